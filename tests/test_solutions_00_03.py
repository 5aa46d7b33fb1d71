"""The answer keys of lessons 00-03 (``lessons/solutions/0[0-3]_*.py``).

Every ``exercise_N(quick=True)`` runs (conftest.py forces quick mode and a fresh cache) and must
show the behaviour its answer states: shapes, equalities and orderings that would fail if the answer
were wrong. Timings are only checked to be positive numbers (their ranking is machine noise).
The file names start with digits, so the solutions are loaded by path.
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "lessons" / "solutions"
STEMS = ("00_welcome", "01_data", "02_fast_scnn", "03_mobilenetv3_lraspp")


@functools.cache
def _load(stem: str):
    """Import ``lessons/solutions/<stem>.py`` as a module."""
    path = SOLUTIONS / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"solution_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run these tests with one PyTorch thread. On a shared 2-core machine two threads per process
    slow down many times over as soon as another process computes too (the threads wait for each
    other at every operator: a quick training step went from 0.1 s to several seconds), while one
    thread costs about 1.4x on an idle machine. No test here asserts a timing, and the timing
    exercise is run with ``THREADS = 1`` for the same reason."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _exercises(markdown: str) -> list[str]:
    """The numbered items under '## Exercises' (the rule of tests/test_notebooks.py::_exercises)."""
    part = markdown.split("## Exercises", 1)[-1].split("\n## ", 1)[0]
    items = re.split(r"\n(?=\d+\. )", "\n" + part.strip())
    return [" ".join(item.split()) for item in items if re.match(r"\d+\. ", item.strip())]


# --------------------------------------------------------------------------- one key per exercise
@pytest.mark.parametrize("stem", STEMS)
def test_every_lesson_exercise_has_a_function(stem):
    lesson = (ROOT / "lessons" / f"{stem}.md").read_text(encoding="utf-8")
    count = len(_exercises(lesson))
    assert count > 0
    module = _load(stem)
    found = sorted(name for name in vars(module) if re.fullmatch(r"exercise_\d+", name))
    assert found == sorted(f"exercise_{n}" for n in range(1, count + 1))
    assert list(module.EXERCISES) == [getattr(module, f"exercise_{n}") for n in range(1, count + 1)]
    for n in range(1, count + 1):
        function = getattr(module, f"exercise_{n}")
        quick = inspect.signature(function).parameters["quick"]
        assert quick.kind is inspect.Parameter.KEYWORD_ONLY and quick.default is True
        doc = inspect.getdoc(function)
        assert doc and "\n\nAnswer: " in doc, f"{stem} exercise_{n}: question, then 'Answer: ...'"
        assert doc.splitlines()[0].endswith("?"), f"{stem} exercise_{n}: the first line asks"


def _positive(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


# --------------------------------------------------------------------------- lesson 00
def test_00_exercise_1_bigger_run_is_a_new_cached_model():
    result = _load("00_welcome").exercise_1(quick=True)
    assert result["bigger_settings"]["image_size"] == 128 and result["bigger_epochs"] == 4
    assert result["base_settings"]["image_size"] == 64 and result["base_epochs"] == 3
    assert 0.0 <= result["base_miou"] <= 1.0 and 0.0 <= result["bigger_miou"] <= 1.0
    assert _positive(result["base_seconds"]) and _positive(result["bigger_seconds"])
    assert result["compute_bound_ratio"] == pytest.approx(4 * 4 / 3)
    assert len(result["cached_models"]) >= 2  # the new settings did not replace the old model


def test_00_exercise_2_one_thread_timing_restores_the_threads():
    threads = torch.get_num_threads()
    result = _load("00_welcome").exercise_2(quick=True)
    assert torch.get_num_threads() == threads == result["torch_threads"]
    for key in ("seconds_default_threads", "seconds_one_thread", "slowdown", "data_seconds"):
        assert _positive(result[key]), key
    assert isinstance(result["machine_busy"], bool)
    share = result["parallel_share_amdahl"]  # NaN when the timing was disturbed
    assert math.isnan(share) or 0.0 <= share <= 1.0


def test_00_exercise_3_worst_image_is_the_lowest_iou():
    result = _load("00_welcome").exercise_3(quick=True)
    rows = result["per_image"]
    assert len(rows) == 8
    assert all(0.0 <= row["miou"] <= 1.0 for row in rows)
    worst = min(rows, key=lambda row: row["miou"])
    assert result["worst_index"] == worst["index"] and result["worst_miou"] == worst["miou"]
    assert all(0.0 < row["person_share"] < 1.0 for row in rows)
    assert all(0.0 <= row[key] <= 1.0 for row in rows
               for key in ("person_skin_share", "background_skin_share"))
    assert all(row["false_positive_share"] + row["false_negative_share"] <= 1.0 for row in rows)
    assert result["errors"].startswith(("mostly false positives", "mostly false negatives"))
    assert f"worst image {worst['index']}" in result["summary"]


# --------------------------------------------------------------------------- lesson 01
def test_01_exercise_1_smaller_scales_leave_more_ignore_pixels():
    result = _load("01_data").exercise_1(quick=True)
    small, default = result["ignore_share_small_scale"], result["ignore_share_default"]
    assert small > default + 0.3
    assert small == pytest.approx(result["expected_ignore_small_scale"], abs=0.1)
    assert default == pytest.approx(result["expected_ignore_default"], abs=0.1)
    assert result["person_share_small_scale"] < result["person_share_default"]


def test_01_exercise_2_person_or_object_is_most_often_absent():
    result = _load("01_data").exercise_2(quick=True)
    assert result["masks"] == 200
    assert result["present"]["sky"] == result["present"]["ground"] == 200
    assert result["most_often_absent"] in ("person", "object")
    assert 0.0 < result["absent_share"][result["most_often_absent"]] < 0.5


def test_01_exercise_3_cutout_never_touches_the_mask():
    result = _load("01_data").exercise_3(quick=True)
    assert result["cutout_only_mask_unchanged"]
    assert 0.0 < result["cutout_only_changed_share"] < 0.5
    assert result["cutout_only_changed_pixels_are_mean_colour"]
    assert result["masks_identical_with_and_without_cutout"] == result["draws"]
    assert 0 < result["images_changed_by_cutout"] < result["draws"]


def test_01_exercise_4_class_set_names_the_stray_value_and_ignore_absorbs_it():
    result = _load("01_data").exercise_4(quick=True)
    assert result["no_class_set_errors"] == result["pairs"]  # every mask holds 2, 3 or 11
    assert "mask values" in result["no_class_set_problem_kinds"]
    assert result["only_num_classes_errors"] > 0 and result["only_ignore_index_errors"] > 0
    assert result["class_set_errors"] == 1
    (problem,) = result["class_set_problems"]
    assert "train_0003.png" in problem and "[9]" in problem
    assert result["class_set_unmapped_ignore_errors"] == 0
    assert result["stray_pixels_loaded_as_ignore"] == result["stray_pixels"] == 16
    # the report now also counts the bad mask's corner, skipped while it was an error
    assert result["extra_ignored_pixels"] == 16 + result["void_pixels_of_that_mask"]
    assert result["no_class_set_unmapped_ignore_errors"] == 0  # silenced, but ...
    assert len(result["no_class_set_unmapped_ignore_classes"]) == 2  # ... classes 2 and 3 lost
    assert result["no_class_set_unmapped_ignore_ignored_share"] > 0.05


# --------------------------------------------------------------------------- lesson 02
def test_02_exercise_1_aux_mode_returns_main_and_two_aux_logits():
    result = _load("02_fast_scnn").exercise_1(quick=True)
    assert result["logits_shape"] == (2, 2, 64, 96)
    assert result["aux_shapes"] == [(2, 2, 64, 96), (2, 2, 64, 96)]
    assert result["eval_output_is_tensor"] and result["eval_output_shape"] == (2, 2, 64, 96)
    assert result["loss"] == pytest.approx(result["loss_by_hand"], rel=1e-5)
    assert result["aux_params"] > 0


def test_02_exercise_2_dilation_changes_neither_parameters_nor_flops():
    result = _load("02_fast_scnn").exercise_2(quick=True)
    assert result["params_dilation_1"] == result["params_dilation_4"] > 0
    assert result["flops_dilation_1"] == result["flops_dilation_4"] > 0
    assert result["output_difference_same_weights"] > 1e-4  # but it sees other context


def test_02_exercise_3_first_size_over_one_gflop():
    result = _load("02_fast_scnn").exercise_3(quick=True)
    gflops = result["gflops_at_widget_sizes"]
    sizes = sorted(gflops)
    assert all(gflops[a] < gflops[b] for a, b in zip(sizes, sizes[1:]))
    assert gflops[512] / gflops[256] == pytest.approx(4.0, rel=0.05)  # x4 per doubling
    first = result["first_widget_size_over_1_gflop"]
    assert gflops[first] > 1.0 and all(gflops[s] <= 1.0 for s in sizes if s < first)
    side = result["first_side_over_1_gflop"]
    assert side % 32 == 0
    assert result["gflops_at_that_side"] > 1.0 >= result["gflops_one_step_below"]
    assert abs(side - result["estimated_side"]) < 64


def test_02_exercise_4_model_without_ppm_trains_and_is_smaller():
    result = _load("02_fast_scnn").exercise_4(quick=True)
    assert result["ppm_params"] > 0
    assert result["params_without_ppm"] == result["params_with_ppm"] - result["ppm_params"]
    for miou in result["miou_with_ppm"] + result["miou_without_ppm"]:
        assert 0.0 <= miou <= 1.0


# --------------------------------------------------------------------------- lesson 03
def test_03_exercise_1_reduced_tail_has_fewer_parameters():
    result = _load("03_mobilenetv3_lraspp").exercise_1(quick=True)
    assert result["params_reduced_tail"] < result["params_full_tail"]
    assert result["saved"] == result["params_full_tail"] - result["params_reduced_tail"]
    assert sum(result["saved_by_row"].values()) == result["saved"]
    assert result["last_channels"] == (960, 480)
    assert 0.0 < result["flops_saved_share"] < result["saved_share"]  # early layers keep their cost
    assert result["saved_by_row"]["classifier"] == result["head_saved_expected"] == 2 * 480 * 128


def test_03_exercise_2_gate_of_ones_removes_the_multiplicative_term():
    result = _load("03_mobilenetv3_lraspp").exercise_2(quick=True)
    assert result["no_gate_equals_formula_without_F2"]
    assert result["gate_shape"] == (8, 128, 1, 1)
    assert 0.0 < result["gate_range"][0] < result["gate_range"][1] < 1.0  # a sigmoid, not constant
    assert result["gate_std_across_images"] > 0.0  # the gate depends on the image
    assert result["logit_change_without_gate"] > 0.0
    assert result["params_removed"] == result["high_channels"] * 128  # W2


def test_03_exercise_3_tap_is_the_block_entering_stride_8():
    result = _load("03_mobilenetv3_lraspp").exercise_3(quick=True)
    assert result["low_index"] == result["block_entering_stride_8"] == 4
    assert result["shapes_layers_4_5_6"] == [(40, 28, 28)] * 3
    assert result["output_change_tap_6"] > 1e-4
    if result["reference_file"] is not None:  # ../shared/reference is optional
        assert result["reference_difference_tap_4"] < 1e-4
        assert result["reference_difference_tap_6"] > 1e-3


def test_03_exercise_4_timings_are_positive_and_flops_scale_with_pixels(monkeypatch):
    module = _load("03_mobilenetv3_lraspp")
    monkeypatch.setattr(module, "THREADS", 1)  # see one_torch_thread; no timing is asserted
    result = module.exercise_4(quick=True)
    assert result["threads"] == 1
    assert len(result["median_ms"]) == 4
    assert all(_positive(ms) for ms in result["median_ms"].values())
    names = {key.split(" @ ")[0] for key in result["median_ms"]}
    for name in names:
        ratio = result["gflops"][f"{name} @ 512"] / result["gflops"][f"{name} @ 256"]
        assert ratio == pytest.approx(4.0, rel=0.05)
    assert set(result["ranking"]) == {256, 512}
    assert all(sorted(order) == sorted(names) for order in result["ranking"].values())
    assert result["same_ranking"] == (result["ranking"][256] == result["ranking"][512])
    assert isinstance(result["machine_busy"], bool)


# --------------------------------------------------------------------------- the scripts
@pytest.mark.parametrize("stem", STEMS)
def test_main_prints_a_report_for_every_exercise(stem, capsys, monkeypatch):
    """``python lessons/solutions/<stem>.py`` with no arguments (cheap here: the models trained by
    the tests above are in this session's cache)."""
    module = _load(stem)
    if hasattr(module, "THREADS"):
        monkeypatch.setattr(module, "THREADS", 1)  # see one_torch_thread
    module.main([])
    out = capsys.readouterr().out
    assert out.startswith(f"lesson {stem[:2]}, quick settings")
    for n in range(1, len(module.EXERCISES) + 1):
        assert f"\nexercise {n} (" in out
    assert out.count("  -> ") == len(module.EXERCISES)
