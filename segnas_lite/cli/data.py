"""``segnas data check PATH``: the data doctor (``data.check.check_folder``)."""
from __future__ import annotations

import argparse
import json

from segnas_lite.cli.options import add_data_options, add_quiet_option, data_options

HELP = "check a dataset folder before training (segnas data check PATH)"
CHECK_HELP = ("read every image/mask pair of a folder and report problems and class shares (exit "
              "status 1 on errors)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help=CHECK_HELP, description=CHECK_HELP)
    check.add_argument("path", metavar="PATH", help="the dataset folder")
    add_data_options(check, source=False)
    check.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    add_quiet_option(check)


def run(args) -> int:
    """Read every pair, print the report; exit status 1 when it found errors."""
    from segnas_lite.data.check import check_folder
    from segnas_lite.runio import atomic_write_text
    report = check_folder(args.path, quiet=args.quiet, **data_options(args))
    print(report.to_text())
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.json}")
    return 1 if report.errors else 0
