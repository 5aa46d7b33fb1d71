"""The teaching notebooks: structure rules for every committed notebook, and a quick-mode run of each.

(a) Structure (fast): a markdown title with learning goals first; the first code cell is tagged
    ``parameters`` and holds only plain assignments; a summary and exercises at the end; no error
    outputs; no ``def`` / ``class`` in code cells (library code lives in ``segnas_lite``), except in
    a cell whose first line is ``# from scratch`` (a short teaching version of a library piece); widget
    state either absent or saved with the notebook.
(b) Execution: papermill runs every notebook in quick mode (``CI=1``) in a temporary folder, the
    notebooks directory as working directory, sharing one temporary cache (as CI does), so a later
    notebook may reuse an earlier one's results. nbval (``pytest --nbval-lax notebooks``) separately
    compares the outputs of cells marked ``# NBVAL_CHECK_OUTPUT``.
"""
from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
IDS = [path.stem for path in NOTEBOOKS]


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code_without_magics(source: str) -> str:
    """Cell source with IPython magics / shell escapes removed, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 4, f"expected the numbered notebooks in {NOTEBOOK_DIR}"
    numbers = [path.name[:2] for path in NOTEBOOKS]
    assert len(set(numbers)) == len(numbers), f"two notebooks share a number: {numbers}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_structure(path: Path):
    notebook = _read(path)
    nbformat.validate(notebook)
    cells = notebook.cells
    first = cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), \
        "the first cell must be a markdown title"
    assert re.search(r"learning goals", first.source, re.IGNORECASE), "state the learning goals first"

    code_cells = [c for c in cells if c.cell_type == "code"]
    params = code_cells[0]
    assert "parameters" in params.metadata.get("tags", []), \
        "the first code cell must be tagged 'parameters' (papermill injects overrides after it)"
    tree = ast.parse(params.source)
    assert all(isinstance(node, ast.Assign) for node in tree.body), \
        "the parameters cell holds plain assignments only"
    names = {target.id for node in tree.body for target in node.targets}
    assert "QUICK" in names and "SEED" in names

    tail = "\n".join(c.source for c in cells[-2:] if c.cell_type == "markdown")
    assert re.search(r"^#+ *summary", tail, re.IGNORECASE | re.MULTILINE), "end with a summary"
    assert re.search(r"^#+ *exercises", tail, re.IGNORECASE | re.MULTILINE), "end with exercises"

    for index, cell in enumerate(code_cells):
        tree = ast.parse(_code_without_magics(cell.source))
        defined = [node for node in ast.walk(tree)
                   if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        from_scratch = cell.source.lstrip().startswith("# from scratch")  # the lesson IS the code
        assert from_scratch or not defined, \
            f"code cell {index} defines {defined[0].name}: move it into segnas_lite"
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"code cell {index} has an error output"
            if WIDGET_MIME in output.get("data", {}):
                assert "widgets" in notebook.metadata, \
                    f"code cell {index} shows a widget whose state is not saved (strip it instead)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_was_executed(path: Path):
    """A reader on GitHub sees the figures: every code cell ran, and there is at least one image."""
    notebook = _read(path)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells[1:]), "execute the notebook (quick mode)"
    images = sum("image/png" in o.get("data", {}) for c in code_cells for o in c.outputs)
    assert images >= 1, "an executed notebook shows its static figures"


ALARMS = {"-> FAILED": "a parity check failed", "Error displaying widget": "a widget failed",
          "Traceback (most recent call last)": "a cell raised", "Exception ignored": "an error was hidden",
          "QUICK = False in the parameters cell": "quick mode was forced by the environment, not "
          "injected by parameter", "BusyMachineWarning": "a timing ran on a busy machine",
          "[busy": "a timing ran on a busy machine", "do not quote": "a figure the reader may not use", "the static figure is above": "an old widget note"}
MACHINE_PATH = re.compile(r"(/work/|/home/|/Users/|/root/|/tmp/|[A-Z]:\\|site-packages|"
                          r"\.py:\d+: \w*Warning)")
PROGRESS_BAR = re.compile(r"\d+%\|")  # a tqdm bar saved as text


def _output_text(output) -> str:
    text = output.get("text", "")
    data = output.get("data", {})
    return "".join(text) + "".join(data.get("text/plain", "")) + "".join(output.get("traceback", []))


WORKSHOP_DIR = NOTEBOOK_DIR / "workshop"
WORKSHOP = [WORKSHOP_DIR / path.name for path in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS + WORKSHOP, ids=IDS + [f"workshop-{i}" for i in IDS])
def test_saved_outputs_raise_no_alarm(path: Path):
    """What a reader sees must not contradict the prose or alarm them: no saved output says FAILED,
    shows a broken widget or a traceback (issue 13: notebook 08 printed "-> FAILED" under a text
    saying PASSED), a forced-quick note, a busy timing, a progress bar, a machine path or a photo of
    the unlicensed people folder (issue 24); the workshop-size copies included."""
    notebook = _read(path)
    for key in ("input_path", "output_path"):
        assert key not in notebook.metadata.get("papermill", {}), \
            f"papermill's {key} names the machine that ran it: run `segnas notebooks` (reader copies)"
    for index, cell in enumerate(notebook.cells):
        if "private-data" in cell.metadata.get("tags", []):
            assert not any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])), \
                f"cell {index} saved photos of a folder without a licence"
        for output in cell.get("outputs", []):
            text = _output_text(output)
            for alarm, meaning in ALARMS.items():
                assert alarm not in text, f"cell {index}: {meaning}: {text[:300]}"
            found = MACHINE_PATH.search(text)
            assert not found, f"cell {index} saves a machine path or file name: {found.group(0)!r} in " \
                              f"{text[max(0, found.start() - 80):found.end() + 80]!r}"
            assert not PROGRESS_BAR.search(text), f"cell {index} saved a progress bar: {text[:200]}"


def test_notebook_and_lesson_exercises_are_the_same():
    """The exercise list a student reads in the notebook is the one the lesson's answer key covers."""
    lessons = Path(__file__).resolve().parents[1] / "lessons"
    for path in NOTEBOOKS:
        notebook = _read(path)
        text = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        lesson = next(lessons.glob(f"{path.name[:2]}_*.md")).read_text()
        ours = _exercises(text)
        assert ours, f"{path.name}: no numbered exercises under '## Exercises'"
        assert ours == _exercises(lesson), f"{path.name}: its exercises differ from the lesson's"


def _exercises(markdown: str) -> list[str]:
    """The numbered items under '## Exercises', whitespace-normalised."""
    part = markdown.split("## Exercises", 1)[-1].split("\n## ", 1)[0]
    items = re.split(r"\n(?=\d+\. )", "\n" + part.strip())
    return [" ".join(item.split()) for item in items if re.match(r"\d+\. ", item.strip())]


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One cache for the whole session, as in CI: notebook 02 may reuse what 00 trained."""
    return tmp_path_factory.mktemp("segnas_cache")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_runs_in_quick_mode(path: Path, tmp_path, shared_cache, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("CI", "1")
    monkeypatch.setenv("SEGNAS_QUIET", "1")
    monkeypatch.setenv("SEGNAS_CACHE", str(shared_cache))
    started = time.perf_counter()
    from segnas_lite.teaching.notebook_runner import execute_notebook
    execute_notebook(path, tmp_path / path.name, cwd=NOTEBOOK_DIR, cell_timeout=300)
    seconds = time.perf_counter() - started
    executed = _read(tmp_path / path.name)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    print(f"{path.name}: {seconds:.1f} s")  # shown with -rP / -s; no timing assertion here


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_workshop_copy_is_this_notebook_run_at_workshop_size(path: Path):
    """``notebooks/workshop/`` holds each notebook executed with ``QUICK = False``: the same code
    (a code change needs a new workshop run: ``segnas notebooks OUTDIR`` on a quiet machine),
    every cell executed, and a "quick mode: False" line showing which mode produced it."""
    copy = WORKSHOP_DIR / path.name
    assert copy.is_file(), f"no workshop-size copy {copy}: run `segnas notebooks` and copy it there"
    ours = [c.source for c in _read(path).cells if c.cell_type == "code"]
    theirs = [c for c in _read(copy).cells if c.cell_type == "code"
              and "injected-parameters" not in c.metadata.get("tags", [])]
    assert [c.source for c in theirs] == ours, f"{copy} was run from other code: re-run it"
    assert all(c.get("execution_count") for c in theirs[1:]), f"{copy}: not every cell ran"
    printed = "".join(_output_text(o) for c in theirs for o in c.get("outputs", []))
    assert re.search(r"quick mode: False", printed), f"{copy} was not run at workshop size"


def test_lessons_state_the_measured_workshop_run_time():
    """Each lesson names its notebook's workshop run time on 2 cores (measured, as the issue asks)."""
    lessons = Path(__file__).resolve().parents[1] / "lessons"
    for path in NOTEBOOKS:
        text = next(lessons.glob(f"{path.name[:2]}_*.md")).read_text()
        assert re.search(r"Workshop-size run: [0-9.]+ (s|min) on 2 cores", text), \
            f"lesson {path.name[:2]} does not state its notebook's measured workshop run time"
