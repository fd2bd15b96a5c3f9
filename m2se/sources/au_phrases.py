"""OpenFace 2 action units → the phrases of fer answers.

EmoVerse's answers read like ``Eyes narrowing; Slightly puzzled``; the table it used was not released,
so these phrases are m2se's, one per AU that OpenFace estimates (FACS names in the comments). AU45
(blink) says nothing about expression and is left out.
"""

AU_PHRASES = {
    "AU01": "Inner brows raised",  # inner brow raiser
    "AU02": "Outer brows raised",  # outer brow raiser
    "AU04": "Brows furrowed",  # brow lowerer
    "AU05": "Eyes widening",  # upper lid raiser
    "AU06": "Cheeks raised",  # cheek raiser
    "AU07": "Eyes narrowing",  # lid tightener
    "AU09": "Nose wrinkling",  # nose wrinkler
    "AU10": "Upper lip raised",  # upper lip raiser
    "AU12": "Smiling",  # lip corner puller
    "AU14": "Dimpling",  # dimpler
    "AU15": "Lip corners down",  # lip corner depressor
    "AU17": "Chin raised",  # chin raiser
    "AU20": "Lips stretched",  # lip stretcher
    "AU23": "Lips tightened",  # lip tightener
    "AU25": "Lips parted",  # lips part
    "AU26": "Jaw dropping",  # jaw drop
    "AU28": "Lips sucked in",  # lip suck (presence only in OpenFace)
}
