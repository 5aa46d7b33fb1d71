"""The `segnas` command end to end on tiny settings (each call a few seconds)."""
import json

import pytest
from PIL import Image

from segnas_lite.cli import main
from segnas_lite.data import default_people_dir

TINY = ["--data", "synthetic", "--image-size", "64", "--train-size", "16", "--batch-size", "4",
        "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--model", "fast_scnn", "--epochs", "1", "--out", str(out), *TINY]) == 0
    return out


def test_train_writes_the_run_files(trained):
    assert {"checkpoint.pt", "metrics.jsonl", "config.json"} <= {p.name for p in trained.iterdir()}
    assert json.loads((trained / "config.json").read_text())["model"]["name"] == "fast_scnn"


def test_train_refuses_to_overwrite_and_resumes(trained, capsys):
    assert main(["train", "--epochs", "1", "--out", str(trained), *TINY]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--model", "fast_scnn", "--epochs", "2", "--out", str(trained),
                 "--resume", *TINY]) == 0
    epochs = [json.loads(l)["epoch"] for l in (trained / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


def test_evaluate_prints_and_writes_metrics(trained, capsys):
    out = trained / "eval.json"
    assert main(["evaluate", "--checkpoint", str(trained / "checkpoint.pt"), "--data", "synthetic",
                 "--image-size", "64", "--num-images", "8", "--out", str(out), "--quiet"]) == 0
    assert "mIoU" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    assert 0 <= metrics["miou"] <= 1 and set(metrics["per_class_iou"]) == {"background", "person"}


def test_predict_writes_mask_and_overlay(trained, tmp_path):
    image = tmp_path / "photo.png"
    Image.new("RGB", (90, 70), (200, 150, 100)).save(image)
    assert main(["predict", "--checkpoint", str(trained / "checkpoint.pt"), str(image),
                 "--out", str(tmp_path / "masks")]) == 0
    mask = Image.open(tmp_path / "masks" / "photo_mask.png")
    assert mask.size == (90, 70)
    assert (tmp_path / "masks" / "photo_overlay.png").exists()
    # a second run does not overwrite without asking
    assert main(["predict", "--checkpoint", str(trained / "checkpoint.pt"), str(image),
                 "--out", str(tmp_path / "masks")]) == 2


def test_export_then_predict_with_openvino(trained, tmp_path, capsys):
    xml = tmp_path / "ir" / "model.xml"
    assert main(["export", "--checkpoint", str(trained / "checkpoint.pt"), "--image-size", "64",
                 "--out", str(xml)]) == 0
    text = capsys.readouterr().out
    assert "parity [f32, f16 weights]" in text and "PASSED" in text and "parity [default" in text
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (20, 150, 100)).save(image)
    assert main(["predict", "--model", str(xml), str(image), "--out", str(tmp_path / "ov")]) == 0
    assert (tmp_path / "ov" / "photo_mask.png").exists()


def test_train_a_genotype_child(tmp_path):
    from segnas_lite.nas import Genotype, seed_space
    genotype = tmp_path / "genotype.json"
    Genotype.uniform(seed_space(), "sep_3x3").save(genotype)
    out = tmp_path / "child"
    assert main(["train", "--genotype", str(genotype), "--epochs", "1", "--out", str(out), *TINY]) == 0
    info = json.loads((out / "config.json").read_text())["model"]
    assert info["name"] == "nas_child" and "sep_3x3" in info["kwargs"]["genotype"]


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--model", "nas_child", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert "--genotype" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "no known layout" in capsys.readouterr().err


def test_choices_come_from_the_registries(capsys):
    from segnas_lite.cli import build_parser
    from segnas_lite.zoo import available_models
    from segnas_lite.nas import SPACES
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    option = lambda cmd, dest: next(a for a in sub[cmd]._actions if a.dest == dest)  # noqa: E731
    assert option("train", "model").choices == available_models()
    assert option("export", "model").choices == available_models()
    assert option("search", "space").choices == list(SPACES)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "resnet", "--out", "x"])
    assert exit_.value.code == 2 and "invalid choice: 'resnet'" in capsys.readouterr().err


def test_every_command_has_help(capsys):
    for command in ("train", "evaluate", "predict", "demo", "search", "export", "notebooks",
                    "models"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0 and f"usage: segnas {command}" in capsys.readouterr().out


def test_device_flags_reach_the_configs_and_bad_ones_are_one_line_errors(tmp_path, capsys):
    import torch
    from segnas_lite.cli import build_parser
    from segnas_lite.cli.search import search_config
    parse = build_parser().parse_args
    args = parse(["train", "--out", "x", "--device", "CUDA:1", "--amp", "bf16", "--sync-bn"])
    assert (args.device, args.amp, args.sync_bn) == ("cuda:1", "bf16", True)
    default = parse(["train", "--out", "x"])
    assert (default.device, default.amp, default.sync_bn) == ("auto", None, False)
    search = parse(["search", "--out", "x", "--device", "cpu"])
    assert search_config(search, teacher=False).device == "cpu"
    assert parse(["evaluate", "--checkpoint", "c", "--device", "cpu"]).device == "cpu"
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", "x", "--device", "tpu"])
    assert exit_.value.code == 2 and "auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    refused = [(["--amp", "fp16"], "fp16 needs a CUDA"), (["--sync-bn"], "sync-bn needs CUDA")]
    if not torch.cuda.is_available():
        refused.append((["--device", "cuda"], "no CUDA GPU"))
    for flags, message in refused:
        out = tmp_path / flags[-1].strip("-")
        assert main(["train", "--epochs", "1", "--out", str(out), *TINY, "--device", "cpu",
                     *flags]) == 2
        assert message in capsys.readouterr().err and not (out / "checkpoint.pt").exists()


def test_demo_without_search_or_export(tmp_path, capsys):
    out = tmp_path / "demo"
    tiny = ["--image-size", "64", "--epochs", "1", "--train-size", "16", "--skip-search",
            "--skip-export", "--quiet", "--out", str(out)]
    assert main(["demo", *tiny]) == 0
    text = capsys.readouterr().out
    assert "OV f32 ms" in text and "fast_scnn" in text and "searched child" not in text
    rows = json.loads((out / "demo_summary.json").read_text())["rows"]
    assert [row["model"] for row in rows] == ["fast_scnn"] and "ov_f32_ms" not in rows[0]
    for name in ("demo_predictions_fast_scnn.png", "demo_training_fast_scnn.png",
                 "fast_scnn/checkpoint.pt"):
        assert (out / name).exists(), name
    assert main(["demo", *tiny]) == 2  # earlier results are not overwritten
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.people
def test_train_on_the_people_folder(tmp_path):
    people = default_people_dir()
    if not people.is_dir():
        pytest.skip(f"people data set not found at {people}")
    out = tmp_path / "people"
    assert main(["train", "--data", str(people), "--image-size", "64", "--train-size", "16",
                 "--batch-size", "4", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert 0 <= record["val_miou"] <= 1


def test_search_then_retrain_the_child(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "search"
    # a budget far above any tiny net: the closed loop's measurement always fits, even under load
    assert main(["search", "--space", "tiny", "--quick", "--image-size", "48", "--out", str(out),
                 "--backend", "torch", "--budget-ms", "1000", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "budget genotype" in text and "rejected" in text
    for name in ("genotype.json", "genotype_argmax.json", "history.json", "latency_table.json"):
        assert (out / name).exists(), name
    assert main(["search", "--space", "tiny", "--quick", "--image-size", "48", "--out", str(out),
                 "--backend", "torch", "--budget-ms", "1000", "--quiet"]) == 2  # not overwritten
    assert "--resume" in capsys.readouterr().err
    child = tmp_path / "child"
    assert main(["train", "--genotype", str(out / "genotype.json"), "--epochs", "1",
                 "--out", str(child), *TINY]) == 0


def test_search_flags_for_the_supernet_and_the_strategy_reach_the_config(tmp_path, capsys):
    from segnas_lite.cli import build_parser
    from segnas_lite.cli.search import search_config
    from segnas_lite.nas.config import SearchConfig
    parse = lambda *flags: build_parser().parse_args(["search", "--out", "x", *flags])  # noqa: E731
    config = search_config(parse("--quick", "--warmup-epochs", "5", "--warmup-sampling",
                                 "strict_fair", "--sandwich", "2", "--inplace-distill",
                                 "--bn-recalibration", "64", "--strategy", "evolution",
                                 "--population", "8", "--generations", "4", "--evaluations", "30"),
                           teacher=False)
    assert (config.warmup_epochs, config.warmup_sampling, config.sandwich, config.inplace_distill,
            config.bn_recalibration, config.strategy, config.evaluations) == (
        5, "strict_fair", 2, True, 64, "evolution", 30)
    quick = SearchConfig.quick().evolution
    assert (config.evolution.population, config.evolution.generations) == (8, 4)
    assert config.evolution.mutate_prob == quick.mutate_prob and config.steps_per_epoch == 10
    plain, default = search_config(parse(), teacher=False), SearchConfig()
    for name in ("warmup_epochs", "warmup_sampling", "sandwich", "inplace_distill",
                 "bn_recalibration", "strategy", "evaluations", "evolution"):
        assert getattr(plain, name) == getattr(default, name), name  # defaults live in one place
    assert (plain.sandwich, plain.inplace_distill, plain.bn_recalibration) == (2, True, 256)
    seeds_warmup = search_config(parse("--warmup-sampling", "constrained"), teacher=False)
    assert (seeds_warmup.sandwich, seeds_warmup.inplace_distill) == (0, False)  # no sandwich there
    taught = search_config(parse("--teacher", "t.pt"), teacher=True)
    assert (taught.sandwich, taught.distill_weight) == (0, 0.5)  # an external teacher: one path
    apart = search_config(parse("--no-inplace-distill"), teacher=False)
    assert (apart.sandwich, apart.inplace_distill) == (2, False)
    assert main(["search", "--space", "tiny", "--sandwich", "0", "--inplace-distill", "--out",
                 str(tmp_path / "s"), "--quiet"]) == 2
    assert "needs the sandwich" in capsys.readouterr().err


def test_models_lists_parameter_counts(capsys):
    assert main(["models", "--num-classes", "21", "--image-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "3,221,538" in out  # LR-ASPP MobileNetV3-Large, torchvision's count for 21 classes
    assert "fast_scnn" in out and "mbv3_baseline" in out


def _notebook(path, code):
    import nbformat
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("QUICK = False")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_notebooks_runs_the_sequence_and_reports_a_failing_cell(tmp_path, capsys):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "00_ok.ipynb", "import os; print('quick', QUICK, 'quiet', os.environ['SEGNAS_QUIET'])")
    _notebook(src / "01_bad.ipynb", "1 / 0")
    _notebook(src / "02_never.ipynb", "pass")
    code = main(["notebooks", str(tmp_path / "out"), "--quick", "--notebooks", str(src), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "01_bad.ipynb failed" in captured.err and "ZeroDivisionError" in captured.err
    assert "00_ok.ipynb" in captured.out and not (tmp_path / "out" / "02_never.ipynb").exists()
    import nbformat
    copy = nbformat.read(tmp_path / "out" / "00_ok.ipynb", as_version=4)
    assert [c.source for c in copy.cells] == ["# t", "QUICK = False", src_code(src / "00_ok.ipynb")]
    assert copy.cells[2].outputs[0].text == "quick True quiet 1\n"  # injected, then folded back
    assert "input_path" not in copy.metadata.papermill
    assert main(["notebooks", str(tmp_path / "out"), "--quick", "--notebooks", str(src)]) == 2


def src_code(path):
    import nbformat
    return nbformat.read(path, as_version=4).cells[-1].source


def test_notebooks_refuses_a_workshop_run_that_ci_would_force_quick(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CI", "true")
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "00_ok.ipynb", "pass")
    assert main(["notebooks", str(tmp_path / "out"), "--notebooks", str(src)]) == 2
    assert "unset them for the workshop-size run" in capsys.readouterr().err


def test_a_stalled_notebook_cell_fails_fast_and_is_named(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SEGNAS_QUICK", raising=False)
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "00_slow.ipynb", "import time; time.sleep(60)")
    code = main(["notebooks", str(tmp_path / "out"), "--notebooks", str(src), "--quiet",
                 "--cell-timeout", "3"])
    err = capsys.readouterr().err
    assert code == 1 and "00_slow.ipynb failed" in err and "over 3 s" in err
