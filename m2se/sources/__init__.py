"""Raw datasets → EMT records (ms-swift ``query/response/images|videos`` JSON), one builder per source.

From Python, each source is one typed function returning a ``common.BuildResult`` (the records, and
the rows skipped with their reasons); ``common.write_records`` writes them as the command line does::

    from m2se.sources.meld import build_meld
    result = build_meld(["test_sent_emo.csv"], media_prefix="MELD/test/")

From the shell, ``python -m m2se.sources <source> INPUT... --out FILE [options]`` (``cli.py``) calls the
same function. ``build_stages`` (``stages.py``) mixes built files into stage files.
"""
