"""The notebooks' measured run times, read from the executed copies: ``python -m
segnas_lite.teaching.run_times [--write | --check]``.

papermill records how long a notebook ran in the executed copy's metadata
(``metadata.papermill.duration``) and how long each cell ran (the cell's ``metadata.papermill.duration``).
The repository keeps two executed copies of every notebook: ``notebooks/NN_*.ipynb`` in quick mode and
``notebooks/workshop/NN_*.ipynb`` at workshop size (2 cores, a fresh cache, the notebooks in order).
The lessons and the workshop plans quote these times; this tool is the only place that computes them,
so that a re-execution of the copies followed by ``--write`` brings every quoted figure up to date.

Per notebook it reports

* ``quick``: the quick copy's run time;
* ``workshop``: the workshop copy's run time (a fresh cache: everything trained, searched, measured);
* ``live``: the workshop time less the cells that read a result the instructor can prepare
  (cells that call ``trained_model(...)`` or ``search_result(...)``: their results are cached under
  keys made of the settings only, so they can be computed once and copied to every machine). What is
  left is what a participant's machine computes itself, latency measurements above all (those are
  cached under a key that holds the CPU model, so they cannot be prepared for another machine);
* the longest of those live cells.

``--write`` rewrites, atomically and nowhere else:

* each lesson's line ``Workshop-size run: X on 2 cores`` (the number, the unit and the date);
* every inline marker ``<!-- run-time NN KIND -->X<!-- /run-time -->`` in ``lessons/*.md``, with
  ``NN`` a notebook number or ``all`` (the sum; for ``longest``, the maximum) and ``KIND`` one of
  ``quick``, ``workshop``, ``live``, ``longest``;
* the table between ``<!-- run-times:begin -->`` and ``<!-- run-times:end -->``.

``--check`` writes nothing and exits with 1 when ``--write`` would change a file.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from segnas_lite.errors import SegnasError

REPO = Path(__file__).resolve().parents[2]
PREPARED_CALL = re.compile(r"\b(trained_model|search_result)\(")  # results the instructor caches
RUN_LINE = re.compile(r"(Workshop-size run: )([0-9.]+ (?:s|min))( on 2 cores)")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
MARKER = re.compile(r"(<!-- run-time (\d\d|all) (quick|workshop|live|longest) -->)(.*?)(<!-- /run-time -->)")
BLOCK = re.compile(r"(<!-- run-times:begin -->\n)(.*?)(<!-- run-times:end -->)", re.DOTALL)
KINDS = ("quick", "workshop", "live", "longest")


class RunTimesError(SegnasError, ValueError):
    """An executed copy is missing or carries no papermill run time."""


@dataclass(frozen=True)
class NotebookTimes:
    """The measured times of one notebook, in seconds."""
    number: str                 # "05"
    name: str                   # "05_latency"
    quick_s: float              # the quick copy
    workshop_s: float           # the workshop copy
    live_s: float               # workshop_s less the cells that read a prepared result
    longest_s: float            # the longest of the live cells (workshop copy)
    longest_cell: str           # "cell 19 (3. On the deployment target the sum fails)"
    date: str | None            # the day the workshop copy ran (papermill's start_time)

    def seconds(self, kind: str) -> float:
        return {"quick": self.quick_s, "workshop": self.workshop_s, "live": self.live_s,
                "longest": self.longest_s}[kind]


def format_seconds(seconds: float) -> str:
    """``38.7 s`` under 100 seconds, ``2.9 min`` from 100 seconds on (one decimal, as the lessons)."""
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def parse_seconds(text: str) -> float:
    """The inverse of :func:`format_seconds`: ``"2.9 min"`` -> 174.0."""
    value, unit = text.split()
    return float(value) * (60.0 if unit == "min" else 1.0)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise RunTimesError(f"no executed copy {path}: run `segnas notebooks OUTDIR` (add --quick for "
                            "the quick copies) and copy the executed notebooks there")
    return json.loads(path.read_text(encoding="utf-8"))


def _cell_seconds(cell: dict) -> float:
    return float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)


def notebook_seconds(path: Path) -> float:
    """The copy's run time: papermill's ``duration``, else the sum of its cells' durations."""
    notebook = _read(path)
    duration = notebook.get("metadata", {}).get("papermill", {}).get("duration")
    if duration is None:
        duration = sum(_cell_seconds(cell) for cell in notebook.get("cells", [])) or None
    if duration is None:
        raise RunTimesError(f"{path} carries no papermill run time: execute it with papermill "
                            "(`segnas notebooks OUTDIR`), not from JupyterLab")
    return float(duration)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _heading(source: str) -> str | None:
    """The last markdown heading of a cell (``## 3. On the deployment target ...``), without ``#``."""
    headings = [line.lstrip("#").strip() for line in source.splitlines() if line.startswith("#")]
    return headings[-1] if headings else None


def live_cells(path: Path) -> list[tuple[int, float, str]]:
    """``(index, seconds, label)`` of every code cell that does not read a prepared result; the
    label names the section the cell belongs to: ``cell 19 (3. On the deployment target ...)``."""
    rows, section = [], "top"
    for index, cell in enumerate(_read(path).get("cells", [])):
        source = _source(cell)
        if cell.get("cell_type") == "markdown":
            section = _heading(source) or section
        elif cell.get("cell_type") == "code" and not PREPARED_CALL.search(source):
            rows.append((index, _cell_seconds(cell), f"cell {index} ({section})"))
    return rows


def _date(path: Path) -> str | None:
    start = _read(path).get("metadata", {}).get("papermill", {}).get("start_time") or ""
    return start[:10] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", start[:10]) else None  # ISO 8601


def collect(repo: Path = REPO) -> list[NotebookTimes]:
    """The times of every numbered notebook of ``repo`` (quick and workshop copies)."""
    notebooks = repo / "notebooks"
    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise RunTimesError(f"no numbered notebooks in {notebooks}: pass --repo, the repository root")
    rows = []
    for path in paths:
        copy = notebooks / "workshop" / path.name
        quick = notebook_seconds(path)
        workshop = notebook_seconds(copy)
        live = live_cells(copy)
        prepared = sum(_cell_seconds(c) for c in _read(copy).get("cells", [])
                       if c.get("cell_type") == "code" and PREPARED_CALL.search(_source(c)))
        _, longest, label = max(live, key=lambda row: row[1]) if live else (0, 0.0, "")
        rows.append(NotebookTimes(number=path.name[:2], name=path.stem, quick_s=quick,
                                  workshop_s=workshop, live_s=max(workshop - prepared, 0.0),
                                  longest_s=longest, longest_cell=label, date=_date(copy)))
    return rows


def figure(times: list[NotebookTimes], number: str, kind: str) -> str:
    """The formatted figure of one marker: a notebook's, or ``all`` (sum; maximum for longest)."""
    if kind not in KINDS:
        raise RunTimesError(f"unknown run-time kind {kind!r}: use one of {', '.join(KINDS)}")
    if number == "all":
        values = [t.seconds(kind) for t in times]
        return format_seconds(max(values) if kind == "longest" else sum(values))
    for row in times:
        if row.number == number:
            return format_seconds(row.seconds(kind))
    raise RunTimesError(f"a run-time marker names notebook {number}, which does not exist")


def table(times: list[NotebookTimes]) -> str:
    """The markdown table the tool prints and writes between the run-times markers."""
    lines = ["| notebook | quick copy | workshop copy | live with a prepared cache | longest live cell |",
             "|---|---|---|---|---|"]
    for row in times:
        lines.append(f"| {row.name} | {format_seconds(row.quick_s)} | {format_seconds(row.workshop_s)} | "
                     f"{format_seconds(row.live_s)} | {format_seconds(row.longest_s)}: {row.longest_cell} |")
    lines.append(f"| **all** | {figure(times, 'all', 'quick')} | {figure(times, 'all', 'workshop')} | "
                 f"{figure(times, 'all', 'live')} | |")
    return "\n".join(lines) + "\n"


def update_text(text: str, times: list[NotebookTimes], *, lesson: str | None = None) -> str:
    """``text`` with its markers, its table and (for the lesson of notebook ``lesson``) its
    ``Workshop-size run:`` line brought up to date."""
    text = MARKER.sub(lambda m: m.group(1) + figure(times, m.group(2), m.group(3)) + m.group(5), text)
    text = BLOCK.sub(lambda m: m.group(1) + table(times) + m.group(3), text)
    row = next((t for t in times if t.number == lesson), None)
    if row is not None:
        def line(match: re.Match) -> str:
            return match.group(1) + format_seconds(row.workshop_s) + match.group(3)
        lines = text.split("\n")
        for i, current in enumerate(lines):
            if RUN_LINE.search(current):
                current = RUN_LINE.sub(line, current, count=1)
                lines[i] = DATE.sub(row.date, current, count=1) if row.date else current
        text = "\n".join(lines)
    return text


def updates(repo: Path = REPO, times: list[NotebookTimes] | None = None) -> dict[Path, str]:
    """``{path: new text}`` for every file under ``lessons/`` that ``--write`` would change."""
    times = collect(repo) if times is None else times
    changed = {}
    for path in sorted((repo / "lessons").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        number = path.name[:2] if path.name[:2].isdigit() else None
        new = update_text(text, times, lesson=number)
        if new != text:
            changed[path] = new
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segnas_lite.teaching.run_times",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="update the run times quoted in lessons/*.md (atomic writes)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if --write would change a file (nothing is written)")
    parser.add_argument("--repo", type=Path, default=REPO, help="repository root (default: this one)")
    args = parser.parse_args(argv)
    try:
        times = collect(args.repo)
        changed = updates(args.repo, times)
    except SegnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(times), end="")
    if args.write:
        from segnas_lite.runio import atomic_write_text
        for path, text in changed.items():
            atomic_write_text(path, text)
            print(f"updated {path.relative_to(args.repo)}")
    elif changed:
        print("out of date: " + ", ".join(str(p.relative_to(args.repo)) for p in changed)
              + " (run with --write)")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
