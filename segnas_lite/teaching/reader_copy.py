"""Turn an executed notebook into a copy a reader may see: nothing of the machine that ran it.

``segnas notebooks`` calls :func:`make_reader_copy` on every executed copy. It

* drops the saved widget state and replaces each widget view by a one-line note (GitHub cannot
  render widgets; the static figure the notebook draws first stays);
* removes papermill's ``input_path`` / ``output_path`` (the folders of whoever ran it) and the
  cell papermill injected after the parameters cell (``QUICK = True`` for the quick copies): the copy
  keeps the notebook's own code, so a student who opens it and runs it gets the parameters cell's
  mode; the injected values stay on record in ``metadata.papermill.parameters``, and each notebook
  prints the mode that produced its outputs ("quick mode: True");
* clears the outputs of cells tagged ``private-data`` (e.g. photos from a folder without a licence:
  a reader sees them when *their* copy of the folder is present, the repository never stores them);
* replaces machine paths in the printed text (the cache, the repository, the Python environment,
  the home folder) by short names: ``$SEGNAS_CACHE``, ``<repo>``, ``<python>``, ``~``.

Everything else (numbers, figures, tables) is kept byte for byte.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from segnas_lite.flags import cache_dir
from segnas_lite.runio import atomic_write_text

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "[a widget is shown here when the notebook runs in JupyterLab]"
PRIVATE_TAG = "private-data"
PRIVATE_NOTE = ("(output not saved: it shows photos from a folder that may not be shared; run the "
                "cell with your own copy of the folder to see it)")
REPO = Path(__file__).resolve().parents[2]


def machine_paths() -> list[tuple[str, str]]:
    """``(path, short name)`` pairs to hide, longest path first (so a path inside another wins)."""
    pairs = {str(cache_dir().expanduser().resolve()): "$SEGNAS_CACHE",
             str(cache_dir()): "$SEGNAS_CACHE",
             str(Path(sys.prefix).resolve()): "<python>",
             str(REPO.parent / "shared"): "<shared>",
             str(REPO): "<repo>",
             str(Path.home()): "~"}
    return sorted(((p, n) for p, n in pairs.items() if len(p) > 1), key=lambda pn: -len(pn[0]))


def redact_paths(text: str, pairs: list[tuple[str, str]] | None = None) -> str:
    """``text`` with every machine path of :func:`machine_paths` replaced by its short name."""
    for path, name in pairs if pairs is not None else machine_paths():
        text = text.replace(path, name)
    return text


def _redact_output(output, pairs) -> None:
    if "text" in output:
        output["text"] = redact_paths("".join(output["text"]), pairs)
    for mime in ("text/plain", "text/markdown", "text/html"):
        if mime in output.get("data", {}):
            output["data"][mime] = redact_paths("".join(output["data"][mime]), pairs)
    if "traceback" in output:
        output["traceback"] = [redact_paths(line, pairs) for line in output["traceback"]]


def make_reader_copy(path: str | os.PathLike) -> dict:
    """Clean the executed notebook at ``path`` in place (atomically, keeping its permissions).

    Returns counts of what changed: ``widgets`` replaced, ``private`` cells cleared."""
    import nbformat
    mode = os.stat(path).st_mode & 0o777
    notebook = nbformat.read(path, as_version=4)
    notebook.metadata.pop("widgets", None)
    papermill = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        papermill.pop(key, None)
    pairs = machine_paths()
    counts = {"widgets": 0, "private": 0}
    notebook.cells = [cell for cell in notebook.cells
                      if "injected-parameters" not in cell.metadata.get("tags", [])]
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if PRIVATE_TAG in cell.metadata.get("tags", []) and cell.outputs:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=PRIVATE_NOTE + "\n")]
            counts["private"] += 1
            continue
        for output in cell.outputs:
            if WIDGET_MIME in output.get("data", {}):
                output["data"] = {"text/plain": WIDGET_NOTE}
                counts["widgets"] += 1
            _redact_output(output, pairs)
    atomic_write_text(path, nbformat.writes(notebook))
    os.chmod(path, mode)  # keep the notebook's own permissions
    return counts
