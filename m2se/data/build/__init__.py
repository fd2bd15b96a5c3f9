"""Raw datasets → EMT records (ms-swift ``query/response/images|videos`` JSON), one builder per source.

    python -m m2se.data.build <meld|ecf|mosei|fer|eri|stages> INPUT... --out FILE [options]

Each source module exposes ``add_arguments(parser)`` and ``run(args) -> common.BuildResult``.
"""
