"""``segnas data check PATH [PATH ...]``: the data doctor (``data.check.check_folders``)."""
from __future__ import annotations

import argparse
import json

from segnas_lite.cli.options import add_data_options, add_quiet_option, data_options

HELP = "check dataset folders before training (segnas data check PATH [PATH ...])"
CHECK_HELP = ("read every image/mask pair of one or several folders and report problems and class "
              "shares; several folders must share one class set, as training on them together "
              "needs (exit status 1 on errors)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help=CHECK_HELP, description=CHECK_HELP)
    check.add_argument("paths", nargs="+", metavar="PATH",
                       help="a dataset folder (several: the folders you would pass to "
                       "segnas train --data A --data B)")
    add_data_options(check, source=False)
    check.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    add_quiet_option(check)


def run(args) -> int:
    """Read every pair, print the reports; exit status 1 when they found errors."""
    from segnas_lite.data.check import check_folders
    from segnas_lite.runio import atomic_write_text
    reports, between = check_folders(args.paths, quiet=args.quiet, **data_options(args))
    print("\n\n".join(report.to_text() for report in reports))
    if between:
        print("\nbetween the folders:\n" + "\n".join(f"  error: {text}" for text in between))
    if args.json:
        payload = (reports[0].to_dict() if len(args.paths) == 1 else
                   {"folders": [report.to_dict() for report in reports], "between": between})
        atomic_write_text(args.json, json.dumps(payload, indent=2))
        print(f"wrote {args.json}")
    return 1 if between or any(report.errors for report in reports) else 0
