"""Build EMT files from raw datasets.

    python -m m2se.sources <source> INPUT... --out FILE [--media-prefix P] [--media-root DIR] [--strict]

Sources: meld, ecf, mosei, fer, eri, dialogue, mer2023, merr (and ``stages``, which mixes built files
into stage files). Each is a typed function, ``build_<source>`` in ``m2se.sources.<source>``; its
keyword arguments are the options (``--media-prefix`` is ``media_prefix``), and an option left out takes
the function's default. Exit status: 0 when the file is written; 2 on a fatal input error or an output
that cannot be written (one ``error: file: reason`` line; the previous output is left as it was) or,
under ``--strict``, when any row was skipped (then nothing is written).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

from m2se.files import first_line
from m2se.sources import dialogue, ecf, eri, fer, meld, mer2023, merr, mosei, stages
from m2se.sources.common import BuildResult, InputError, one_line, summary, write_records

AddArguments = Callable[[argparse.ArgumentParser], None]
# name -> (the builder, what it adds to the common arguments); a new source is one line here.
SOURCES: dict[str, tuple[Callable[..., BuildResult], AddArguments | None]] = {
    "meld": (meld.build_meld, None),
    "ecf": (ecf.build_ecf, ecf.add_arguments),
    "mosei": (mosei.build_mosei, mosei.add_arguments),
    "fer": (fer.build_fer, fer.add_arguments),
    "eri": (eri.build_eri, eri.add_arguments),
    "dialogue": (dialogue.build_dialogue, dialogue.add_arguments),
    "mer2023": (mer2023.build_mer2023, mer2023.add_arguments),
    "merr": (merr.build_merr, merr.add_arguments),
}
CLI_ONLY = ("source", "inputs", "out", "strict")  # arguments that are not the builder's


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="source file(s)")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="EMT JSON file to write (replaced whole; kept as it was on failure)",
    )
    parser.add_argument(
        "--media-prefix", help="prepended to each clip/image file name in the records (default: '')"
    )
    parser.add_argument(
        "--media-root",
        type=Path,
        help="folder holding the clips/images; rows whose file is missing are skipped",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 2 and write nothing if any row is skipped"
    )


def _subparser(sub, name: str, function: Callable) -> argparse.ArgumentParser:
    """The subcommand ``name``, documented by its module and ``function``'s docstrings. Options left
    out of the command line are left out of the namespace, so ``function``'s defaults apply."""
    module_doc = sys.modules[function.__module__].__doc__ or name
    return sub.add_parser(
        name,
        help=module_doc.split("\n")[0],
        description=f"{module_doc.rstrip()}\n\n{function.__name__}(), whose keyword arguments are the options: "
        f"{inspect.getdoc(function)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m m2se.sources", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, (function, add_arguments) in SOURCES.items():
        child = _subparser(sub, name, function)
        add_common_arguments(child)
        if add_arguments is not None:
            add_arguments(child)
    stages.add_arguments(_subparser(sub, "stages", stages.build_stages))  # its --out is a folder; no INPUT
    return parser


def _error(err: Exception) -> int:
    # OSError's own text reads "[Errno 21] Is a directory: 'x'"; the house style names the file first.
    if isinstance(err, OSError) and err.filename is not None:
        message = f"{err.filename}: {err.strerror or first_line(err)}"
    else:
        message = str(err) or type(err).__name__
    print(f"error: {one_line(message)}", file=sys.stderr)
    return 2


def _stages(args: argparse.Namespace) -> int:
    manifest = stages.build_stages(args.config, args.out)
    for info in manifest["stages"].values():
        tasks = ", ".join(f"{t} {n}" for t, n in info["tasks"].items())
        print(f"{args.out / info['file']}: {info['records']} records ({tasks})")
    print(f"manifest: {args.out / stages.MANIFEST} (seed {manifest['seed']})")
    return 0


def _build(args: argparse.Namespace) -> BuildResult:
    """The records of ``args.source``, written to ``args.out``; InputError under the CLI's own rules."""
    function, _ = SOURCES[args.source]
    options = {key: value for key, value in vars(args).items() if key not in CLI_ONLY}
    result = function(args.inputs, **options)
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
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.source == "stages":
            return _stages(args)
        result = _build(args)
    except (InputError, OSError) as err:
        return _error(err)
    except ValueError as err:  # stages: a config that cannot be built
        if args.source != "stages":
            raise
        return _error(err)
    print(summary(result, args.out))
    return 0
