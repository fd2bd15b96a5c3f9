"""Raw datasets → EMT records (ms-swift ``query/response/images|videos`` JSON), one builder per source.

From Python, each source is one typed function returning a ``common.BuildResult`` (the records, and
the rows skipped with their reasons); ``common.write_records`` writes them as the command line does::

    from m2se.sources import build_meld   # or: from m2se.sources.meld import build_meld
    result = build_meld(["test_sent_emo.csv"], media_prefix="MELD/test/")

From the shell, ``python -m m2se.sources <source> INPUT... --out FILE [options]`` (``cli.py``) calls the
same function. ``build_stages`` (``stages.py``) mixes built files into stage files.
"""

from importlib import import_module

# build_<source> of each module, importable from the package (``from m2se.sources import build_meld``);
# loaded on first use, so that importing one builder does not import them all.
BUILDERS = {
    "build_meld": "meld",
    "build_ecf": "ecf",
    "build_mosei": "mosei",
    "build_fer": "fer",
    "build_eri": "eri",
    "build_dialogue": "dialogue",
    "build_mer2023": "mer2023",
    "build_merr": "merr",
    "build_stages": "stages",
}
__all__ = list(BUILDERS)


def __getattr__(name: str):
    if name in BUILDERS:
        return getattr(import_module(f"m2se.sources.{BUILDERS[name]}"), name)
    raise AttributeError(f"module 'm2se.sources' has no attribute {name!r}")
