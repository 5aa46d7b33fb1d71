"""The ``segnas`` command: one module per sub-command, wired together here.

Each command module holds ``HELP`` (one line), ``add_arguments(parser)`` (its flags; shared ones
come from ``options``) and ``run(args) -> int`` (one call into the library, then printing).
``main`` parses and turns the package's named errors (``SegnasError``) and the operating system's
into one readable line and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

from segnas_lite import __version__
from segnas_lite.cli import (data, demo, evaluate, export, latency, models, notebooks, predict,
                             replace_background, search, train, video)
from segnas_lite.errors import SegnasError

COMMANDS = {  # name -> module, in the order `segnas --help` lists them
    "train": train, "evaluate": evaluate, "predict": predict, "demo": demo, "search": search,
    "latency": latency, "export": export, "notebooks": notebooks, "models": models, "data": data,
    "replace-background": replace_background, "video": video,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segnas", description="Real-time semantic segmentation on the CPU: train, evaluate, "
        "predict, search (ProxylessNAS), export (OpenVINO), demo.")
    parser.add_argument("--version", action="version", version=f"segnas_lite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (SegnasError, OSError) as exc:  # every named error of the package, and the OS's
        print(f"segnas {args.command}: error: {exc}", file=sys.stderr)
        return 2
