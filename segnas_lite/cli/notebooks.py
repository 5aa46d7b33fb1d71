"""``segnas notebooks OUTDIR``: execute every numbered notebook in order (an instructor's dry run)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from segnas_lite.cli.options import (CLIError, add_overwrite_option, add_quiet_option,
                                     positive_int)

HELP = "execute the notebook sequence (workshop dry run)"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"  # the repository's, beside the package


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", metavar="OUTDIR", help="folder for the executed copies")
    p.add_argument("--quick", action="store_true",
                   help="every notebook in its quick mode (papermill injects QUICK = True); "
                   "without it, QUICK = False: the workshop-size run")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: the repository's)")
    p.add_argument("--cell-timeout", type=positive_int, default=600,
                   help="seconds one cell may run before the run stops and names it (a stalled "
                   "kernel fails instead of waiting forever); default %(default)s")
    add_overwrite_option(p, what="executed copies that exist in OUTDIR")
    add_quiet_option(p)


def run(args) -> int:
    """Execute the notebooks with papermill into reader copies (``teaching.reader_copy``), print
    seconds per notebook; 1 if one failed."""
    import os
    import papermill
    from segnas_lite.runio import progress
    from segnas_lite.flags import quick_forced
    from segnas_lite.teaching.notebook_runner import execute_notebook
    from segnas_lite.teaching.reader_copy import make_reader_copy
    source = Path(args.notebooks) if args.notebooks else NOTEBOOKS
    paths = sorted(source.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise CLIError(f"no numbered notebooks (00_*.ipynb ...) in {source}; pass --notebooks DIR")
    out = Path(args.out)
    clash = [str(out / p.name) for p in paths if (out / p.name).exists()]
    if clash and not args.overwrite:
        raise CLIError(f"{clash[0]} exists; pass --overwrite or choose another OUTDIR")
    out.mkdir(parents=True, exist_ok=True)
    if quick_forced() and not args.quick:
        raise CLIError("CI or SEGNAS_QUICK=1 is set, so every notebook would run its quick mode: "
                       "unset them for the workshop-size run, or pass --quick")
    # Inherited by the kernels: executed copies carry no progress bars (nobody watches them).
    os.environ["SEGNAS_QUIET"] = "1"
    parameters = {"QUICK": bool(args.quick)}
    times, failed = [], None
    for path in progress(paths, quiet=args.quiet, desc="notebooks"):
        started = time.perf_counter()
        try:
            execute_notebook(path, out / path.name, cwd=source, cell_timeout=args.cell_timeout,
                             parameters=parameters)
            make_reader_copy(out / path.name)  # no machine paths, widget state or private photos
        except papermill.PapermillExecutionError as exc:
            failed = (path.name, f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}")
        except TimeoutError as exc:  # nbclient's CellTimeoutError: a stalled or too slow cell
            failed = (path.name, f"a cell ran over {args.cell_timeout} s: {exc}")
        times.append((path.name, time.perf_counter() - started))
        if failed:
            break
    print(f"\n{'notebook':<34}{'seconds':>9}")
    for name, seconds in times:
        print(f"{name:<34}{seconds:>9.1f}")
    print(f"{'total':<34}{sum(t for _, t in times):>9.1f}   (executed copies in {out})")
    if failed:
        name, what = failed
        print(f"\n{name} failed, {what}", file=sys.stderr)
        return 1
    return 0
