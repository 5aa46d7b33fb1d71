"""Write the course's architecture diagrams as PNG files, the static pictures the lessons link::

    python -m segnas_lite.teaching.plots.diagrams lessons/figures [--overwrite]

Each PNG is drawn by its plot function with the defaults the lessons use (Fast-SCNN for 19
classes, LR-ASPP on MobileNetV3-Large for 21, the seed's space and macro, layer 3 of the super-net
without a latency table, since a lesson cannot carry this CPU's numbers). The notebooks call the
same functions, so the saved pictures and the notebook figures come from one code path.

Writing is atomic (a reader never sees half a file) and careful: a file that already holds the same
bytes is left alone, and a file with different bytes (say, a figure improved by hand, or drawn by
another matplotlib) is kept unless ``--overwrite``; nothing is written when any file would be
refused. The PNGs carry no software-version metadata, so regenerating them with the same
matplotlib gives the same bytes.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Callable, Sequence

from matplotlib.figure import Figure

from segnas_lite.errors import SegnasError
from segnas_lite.runio import atomic_open
from segnas_lite.teaching.plots.diagram_parts import DiagramError
from segnas_lite.teaching.plots.diagrams_models import fast_scnn_diagram, lraspp_diagram
from segnas_lite.teaching.plots.diagrams_search import macro_diagram, supernet_diagram

DIAGRAMS: dict[str, Callable[[], Figure]] = {
    "fast_scnn": fast_scnn_diagram,
    "lraspp": lraspp_diagram,
    "macro": macro_diagram,
    "supernet_binary_gates": supernet_diagram,
}
"""File stem -> plot function (called with its defaults): ``lessons/figures/<stem>.png``."""

DPI = 100


class FigureExistsError(SegnasError, FileExistsError):
    """A figure file exists with other content and ``overwrite`` was not given."""


def render_png(figure: Figure) -> bytes:
    """``figure`` as PNG bytes at ``DPI``, without the matplotlib version in the metadata."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None},
                   pil_kwargs={"optimize": True})
    return buffer.getvalue()


def write_diagrams(folder: str | Path, *, overwrite: bool = False,
                   names: Sequence[str] | None = None) -> dict[str, str]:
    """Draw the ``DIAGRAMS`` (all, or those in ``names``) into ``folder`` as ``<name>.png``.

    Returns ``{path: "written" | "unchanged" | "replaced"}``. Raises ``FigureExistsError`` before
    writing anything if a file exists with different bytes and ``overwrite`` is false.
    """
    names = list(DIAGRAMS) if names is None else list(names)
    unknown = [name for name in names if name not in DIAGRAMS]
    if unknown:
        raise DiagramError(f"unknown diagrams {unknown}; choose among {sorted(DIAGRAMS)}")
    folder = Path(folder)
    pngs = {folder / f"{name}.png": render_png(DIAGRAMS[name]()) for name in names}
    status = {}
    for path, data in pngs.items():
        if not path.exists():
            status[path] = "written"
        elif path.read_bytes() == data:
            status[path] = "unchanged"
        else:
            status[path] = "replaced"
    clashes = [str(path) for path, state in status.items() if state == "replaced"]
    if clashes and not overwrite:
        raise FigureExistsError(f"{', '.join(clashes)} exist with other content; pass "
                                "--overwrite (overwrite=True) to replace them, or write elsewhere")
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in pngs.items():
        if status[path] != "unchanged":
            with atomic_open(path, "wb") as handle:
                handle.write(data)
    return {str(path): state for path, state in status.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segnas_lite.teaching.plots.diagrams",
        description="Write the architecture diagrams (Fast-SCNN, LR-ASPP, the seed's macro, the "
                    "super-net with binary gates) as PNG files.")
    parser.add_argument("folder",
                        help="where to write <name>.png (the lessons use lessons/figures)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files that exist with other content")
    parser.add_argument("--only", nargs="+", choices=sorted(DIAGRAMS), metavar="NAME",
                        help=f"write only these diagrams ({', '.join(DIAGRAMS)})")
    args = parser.parse_args(argv)
    try:
        status = write_diagrams(args.folder, overwrite=args.overwrite, names=args.only)
    except SegnasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path, state in status.items():
        size = Path(path).stat().st_size / 1024
        print(f"{state:<9} {path} ({size:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
