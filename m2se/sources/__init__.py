"""Raw datasets → EMT records (ms-swift ``query/response/images|videos`` JSON), one builder per source.

From Python, each source is one typed function returning a ``common.BuildResult`` (the records, and
the rows skipped with their reasons); ``common.write_records`` writes them as the command line does::

    from m2se.sources import build_meld   # or: from m2se.sources.meld import build_meld
    result = build_meld(["test_sent_emo.csv"], media_prefix="MELD/test/")

From the shell, ``python -m m2se.sources <source> INPUT... --out FILE [options]`` (``cli.py``) calls the
same function. ``build_stages`` (``stages.py``) mixes built files into stage files.
"""

from importlib import import_module


def __getattr__(name: str):
    """``build_<source>`` of module ``<source>``, importable from the package (``from m2se.sources import
    build_meld``); loaded on first use, so that importing one builder does not import them all."""
    source = name.removeprefix("build_")
    if name.startswith("build_") and source.isidentifier():
        try:
            module = import_module(f"m2se.sources.{source}")
        except ModuleNotFoundError as err:
            if err.name != f"m2se.sources.{source}":  # the builder's own import failed: say that
                raise
        else:
            if hasattr(module, name):
                return getattr(module, name)
    raise AttributeError(f"module 'm2se.sources' has no attribute {name!r}")
