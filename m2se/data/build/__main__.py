"""Build EMT files from raw datasets.

    python -m m2se.data.build <source> INPUT... --out FILE [--media-prefix P] [--media-root DIR] [--strict]

Sources: meld, ecf, mosei, fer, eri, dialogue, mer2023, merr (and ``stages``, which mixes built files
into stage files). Exit status: 0 when the file is written; 2 on a fatal input error or an output that
cannot be written (one ``error: file: reason`` line; the previous output is left as it was) or, under
``--strict``, when any row was skipped (then nothing is written).
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from m2se.data.build.common import InputError, add_common_arguments, one_line, summary, write_records
from m2se.files import first_line

SOURCES = ("meld", "ecf", "mosei", "fer", "eri", "dialogue", "mer2023", "merr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m m2se.data.build", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name in (*SOURCES, "stages"):
        try:
            module = import_module(f"m2se.data.build.{name}")
        except ModuleNotFoundError as err:  # stages.py is written separately: work without it
            if err.name == f"m2se.data.build.{name}":
                continue
            raise
        doc = module.__doc__ or name
        child = sub.add_parser(
            name,
            help=doc.split("\n")[0],
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name != "stages":  # stages brings its own --out (a folder) and no INPUT
            add_common_arguments(child)
        module.add_arguments(child)
        child.set_defaults(module=module)
    return parser


def _error(err: Exception) -> int:
    # OSError's own text reads "[Errno 21] Is a directory: 'x'"; the house style names the file first.
    if isinstance(err, OSError) and err.filename is not None:
        message = f"{err.filename}: {err.strerror or first_line(err)}"
    else:
        message = str(err) or type(err).__name__
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = args.module
    try:
        if args.source == "stages" and hasattr(module, "main"):
            return module.main(args)
        result = module.run(args)
        if getattr(args, "strict", False) and result.skipped:
            print(summary(result, None))
            raise InputError(f"--strict: {sum(result.skipped.values())} row(s) skipped, nothing written")
        if not result.records:  # an empty file would only fail later, in training or evaluation
            print(summary(result, None))
            skipped = sum(result.skipped.values())
            raise InputError(
                f"{', '.join(map(str, args.inputs))}: no records ({skipped} skipped), nothing written"
            )
        write_records(args.out, result.records)
    except (InputError, OSError) as err:
        return _error(err)
    except ValueError as err:  # stages: a config that cannot be built
        if args.source != "stages":
            raise
        return _error(err)
    print(summary(result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
