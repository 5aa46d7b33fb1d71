"""The reader's copy of an executed notebook carries nothing of the machine that ran it (issue 24)."""
import os
import sys
import warnings

import pytest

nbformat = pytest.importorskip("nbformat")
from nbformat.v4 import new_code_cell, new_notebook, new_output  # noqa: E402

from segnas_lite.teaching import reader_copy  # noqa: E402
from segnas_lite.teaching.notebook_utils import short_warning  # noqa: E402


def _write(tmp_path, cells, metadata=None):
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells, metadata=metadata or {}), path)
    return path


def test_machine_paths_are_replaced_by_short_names(tmp_path, monkeypatch):
    cache = tmp_path / "my_cache"
    monkeypatch.setenv("SEGNAS_CACHE", str(cache))
    printed = (f"cache: {cache}\nwritten to {cache}/search/abc\nexecutable {sys.prefix}/bin/python\n"
               f"repo {reader_copy.REPO}/segnas_lite/data/folders.py\n")
    path = _write(tmp_path, [new_code_cell("print(...)", outputs=[
        new_output("stream", name="stdout", text=printed),
        new_output("execute_result", data={"text/plain": f"PosixPath('{cache}/ir')"},
                   execution_count=1)])],
        metadata={"papermill": {"input_path": "/home/x/in.ipynb", "output_path": "/tmp/o.ipynb",
                                "parameters": {"QUICK": True}}})
    reader_copy.make_reader_copy(path)
    notebook = nbformat.read(path, as_version=4)
    text = notebook.cells[0].outputs[0].text + notebook.cells[0].outputs[1].data["text/plain"]
    assert str(cache) not in text and str(reader_copy.REPO) not in text and sys.prefix not in text
    assert "$SEGNAS_CACHE/search/abc" in text and "<python>/bin/python" in text
    assert "<repo>/segnas_lite/data/folders.py" in text and "$SEGNAS_CACHE/ir" in text
    assert notebook.metadata.papermill == {"parameters": {"QUICK": True}}


def test_the_injected_parameters_cell_is_dropped(tmp_path):
    cells = [new_code_cell("QUICK = False", metadata={"tags": ["parameters"]}),
             new_code_cell("QUICK = True", metadata={"tags": ["injected-parameters"]}),
             new_code_cell("print(QUICK)")]
    path = _write(tmp_path, cells)
    reader_copy.make_reader_copy(path)
    assert [c.source for c in nbformat.read(path, as_version=4).cells] == ["QUICK = False",
                                                                          "print(QUICK)"]


def test_private_data_cells_lose_their_outputs(tmp_path):
    private = new_code_cell("display(photos)", metadata={"tags": ["private-data"]}, outputs=[
        new_output("display_data", data={"image/png": "iVBORw0KGgo="})])
    public = new_code_cell("display(figure)", outputs=[
        new_output("display_data", data={"image/png": "iVBORw0KGgo="})])
    path = _write(tmp_path, [private, public])
    os.chmod(path, 0o640)
    assert reader_copy.make_reader_copy(path) == {"widgets": 0, "private": 1}
    cells = nbformat.read(path, as_version=4).cells
    assert [o.output_type for o in cells[0].outputs] == ["stream"]
    assert "not saved" in cells[0].outputs[0].text
    assert "image/png" in cells[1].outputs[0].data
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_short_warning_names_no_file():
    text = short_warning(UserWarning("146 masks differ"), UserWarning, "/x/y/folders.py", 139)
    assert text == "UserWarning: 146 masks differ\n"
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert "folders.py" not in short_warning("m", RuntimeWarning, "/a/folders.py", 1)
