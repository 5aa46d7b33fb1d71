"""`segnas` turns every named error into one line on stderr and exit status 2, never a traceback."""
import time

import pytest

from segnas_lite.cli import main
from segnas_lite.errors import SegnasError


@pytest.mark.parametrize("error", [SegnasError("something named went wrong"),
                                   FileNotFoundError("something named went wrong")])
def test_main_turns_a_named_error_into_one_line_and_exit_2(error, monkeypatch, capsys):
    from segnas_lite.cli import models

    def fail(args):
        raise error
    monkeypatch.setattr(models, "run", fail)
    assert main(["models"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "segnas models: error: something named went wrong\n"
    assert captured.out == ""


def test_main_lets_other_errors_through(monkeypatch):
    from segnas_lite.cli import models

    def fail(args):
        raise ZeroDivisionError("a bug, not a user error")
    monkeypatch.setattr(models, "run", fail)
    with pytest.raises(ZeroDivisionError):
        main(["models"])


def test_train_into_a_folder_under_a_file_names_the_file(tmp_path, capsys):
    blocker = tmp_path / "FILE"
    blocker.write_text("not a folder")
    assert main(["train", "--data", "synthetic", "--image-size", "32", "--train-size", "8",
                 "--batch-size", "4", "--epochs", "1", "--out", str(blocker / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segnas train: error: ") and len(err.strip().splitlines()) == 1
    assert f"{blocker} is a file" in err


def test_export_refuses_a_non_ir_path_before_converting(tmp_path, capsys):
    started = time.perf_counter()
    assert main(["export", "--model", "fast_scnn", "--image-size", "64",
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert time.perf_counter() - started < 5  # nothing was built or converted
    err = capsys.readouterr().err
    assert err.startswith("segnas export: error: ") and ".xml" in err
    assert len(err.strip().splitlines()) == 1 and not list(tmp_path.iterdir())



def test_an_unsafe_or_corrupt_checkpoint_is_one_line_that_never_advises_an_unsafe_load(tmp_path,
                                                                                    capsys):
    """PyTorch's own refusal suggests weights_only=False (which would run the file's code): the
    package says what the file is and never passes that advice on."""
    import os

    import torch
    torch.save({"model": os.path.join}, tmp_path / "pickled.pt")  # code: a safe load refuses it
    (tmp_path / "text.pt").write_text("not a checkpoint")
    for name, said in (("pickled.pt", "it holds a Python object"),
                       ("text.pt", "not a PyTorch checkpoint, or it is truncated")):
        assert main(["evaluate", "--checkpoint", str(tmp_path / name)]) == 2
        error = capsys.readouterr().err
        assert said in error and "weights_only" not in error and len(error.splitlines()) == 1


def test_a_file_given_as_data_folder_is_named(tmp_path, capsys):
    (tmp_path / "photos.zip").write_bytes(b"PK")
    assert main(["data", "check", str(tmp_path / "photos.zip")]) == 2
    assert "is a file: --data takes a dataset folder" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert "no folder there" in capsys.readouterr().err
