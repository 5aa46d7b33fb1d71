"""``segnas data check PATH [PATH ...]``: the data doctor (``data.check.check_folders``).
``segnas data index-masks MASKS [OUT --colours TABLE]``: colour masks -> class-index masks
(``data.colour_masks``)."""
from __future__ import annotations

import argparse
import json

from segnas_lite.cli.options import (add_data_options, add_overwrite_option, add_quiet_option,
                                     data_options)

HELP = ("check dataset folders before training (segnas data check PATH [PATH ...]); turn colour "
        "masks into index masks (segnas data index-masks MASKS OUT --colours TABLE)")
INDEX_HELP = ("write class-index masks (grayscale PNG) from masks that paint each class in a colour; "
              "without OUT and --colours, list the colours the folder uses and suggest a table")
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
    index = sub.add_parser("index-masks", help=INDEX_HELP, description=INDEX_HELP)
    index.add_argument("masks", metavar="MASKS", help="the folder of colour masks")
    index.add_argument("out", nargs="?", metavar="OUT", help="the folder to write index masks to")
    index.add_argument("--colours", metavar="TABLE", help="colour -> class, e.g. "
                       "'#000000:0,#ff0000:1,#ffffff:ignore' (ignore: 255, no label)")
    index.add_argument("--unlisted", choices=("error", "ignore"), default="error",
                       help="a colour the table does not list: stop with an error (default), or "
                       "read it as 'no label' (255)")
    add_overwrite_option(index, what="index masks already in OUT (default: refuse)")
    add_quiet_option(index)


def run(args) -> int:
    return index_masks(args) if args.data_command == "index-masks" else check(args)


def index_masks(args) -> int:
    """List a folder's colours (and a table to start from), or write its index masks."""
    from segnas_lite.data import colour_masks as C
    if args.out is None or args.colours is None:
        counts = C.colour_counts(args.masks, quiet=args.quiet)
        total = sum(counts.values())
        print(f"{len(counts)} colours in {args.masks} (share of all mask pixels):")
        for code, pixels in counts.most_common(20):
            print(f"  {C.hex_colour(code)}  {100 * pixels / total:6.2f}%")
        if len(counts) > 20:
            print(f"  ... and {len(counts) - 20} more (a JPEG mask blurs colours: use PNG masks)")
        print(f"\na table to edit (black is class 0, then by pixels):\n  --colours "
              f"'{C.suggested_mapping(counts) if len(counts) <= 20 else '#000000:0,...'}'")
        if args.out is not None:
            print("\nno index masks written: give --colours TABLE to write them")
            return 1
        return 0
    written = C.index_masks(args.masks, args.out, C.parse_colour_mapping(args.colours),
                            unlisted=args.unlisted, overwrite=args.overwrite, quiet=args.quiet)
    print(f"wrote {len(written)} index masks to {args.out}. segnas train --data reads a folder "
          "holding images/ and masks/: use these as its masks/, and run segnas data check on it")
    return 0


def check(args) -> int:
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
