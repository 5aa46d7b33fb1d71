"""Smoke runs of the latency benchmarks: each ``--quick`` mode in a subprocess, then its JSON checked.

These are not unit tests (a run takes one to a few minutes on 2 shared cores), so they are marked
``slow``. They check that the scripts run end to end and write the rows and keys a notebook reads,
with finite, positive timings and metrics in range; they assert nothing about speed.
"""
from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from segnas_lite.nas import seed_space

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, cache: Path, timeout: int = 1200) -> None:
    env = {**os.environ, "SEGNAS_CACHE": str(cache), "SEGNAS_QUIET": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / name), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_latency_quick_writes_every_variant(tmp_path):
    pytest.importorskip("nncf", reason="the int8 row needs the int8 extra: pip install -e '.[int8]'")
    genotype_path = tmp_path / "genotype.json"
    seed_space().random_genotype(random.Random(0)).save(genotype_path)
    out = tmp_path / "latency.json"
    run_script("latency.py", "--quick", "--genotype", str(genotype_path), "--out", str(out),
               cache=tmp_path / "cache")
    result = json.loads(out.read_text())

    assert [(r["model"], r["size"]) for r in result["rows"]] == [
        ("lraspp_mobilenetv3_small", 256), ("searched", 256)]
    for row in result["rows"]:
        # OpenVINO may lack an int8 kernel for a layer on some CPUs: that variant is skipped with
        # a note naming it (never the whole run); every other variant must be there
        skipped = {v for v in ("ov_default", "ov_int8") if row[f"{v}_ms"] is None}
        assert all(any(f"{v} skipped" in n for n in row["notes"]) for v in skipped)
        assert len(row["notes"]) == len(skipped)
        for variant in {"torch", "ov_f32", "ov_default", "ov_int8"} - skipped:
            assert positive(row[f"{variant}_ms"]) and positive(row[f"{variant}_fps"])
            assert row[f"{variant}_fps"] == pytest.approx(1000 / row[f"{variant}_ms"])
            assert 0.0 <= row[f"miou_{variant}"] <= 1.0
            assert 0.0 <= row[f"agree_{variant}"] <= 1.0
        assert row["agree_torch"] == 1.0  # the reference agrees with itself
        assert row["agree_ov_f32"] >= 0.99  # f32 OpenVINO is the same model numerically
        # the busy guard: the row's four timings in one monitored block, retried while busy
        assert row["busy"] is row["load"]["busy"] and len(row["busy_attempts"]) <= 2
        assert all(attempt["busy"] for attempt in row["busy_attempts"])
        assert row["load"]["ov_probe_before_ms"] > 0  # the OpenVINO probe was taken
    app = result["rows"][0]["benchmark_app"]
    assert positive(app["median_ms"]) and positive(app["ours_median_ms"])
    assert result["environment"]["default_precision"] in ("bf16", "f32", "f16")
    assert result["notes"] == [n for row in result["rows"] for n in row["notes"]]
    assert result["busy_rows"] == [f"{r['model']} @ {r['size']}" for r in result["rows"] if r["busy"]]
    assert result["busy"] is bool(result["busy_rows"])


@pytest.mark.slow
def test_latency_skips_searched_row_without_genotype(tmp_path):
    out = tmp_path / "latency.json"
    run_script("latency.py", "--quick", "--models", "searched", "--genotype",
               str(tmp_path / "missing.json"), "--out", str(out), cache=tmp_path / "cache")
    result = json.loads(out.read_text())
    assert result["rows"] == []
    assert any("searched" in note and "missing.json" in note for note in result["notes"])


@pytest.mark.slow
def test_latency_table_quick_reports_before_and_after_for_every_target(tmp_path):
    out = tmp_path / "latency_table.json"
    run_script("latency_table.py", "--quick", "--out", str(out), cache=tmp_path / "cache")
    result = json.loads(out.read_text())
    assert [r["target"] for r in result["rows"]] == ["torch", "openvino-f32", "openvino-bf16"]
    for row in result["rows"]:
        assert row["size"] == 32 and row["n"] == 6
        for key in ("before_spearman", "after_spearman"):
            assert -1.0 <= row[key] <= 1.0, key
        assert positive(row["before_mape"]) and positive(row["after_mape"])
    assert "busy" in result["load"] and isinstance(result["busy"], bool)
    check = result["crosscheck"]
    assert "error" in check or positive(check["ratio"])
    assert (tmp_path / "latency_table" / "torch_32" / "latency_report.json").is_file()


PEOPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "people"
CCP = PEOPLE.parent / "ccp_people"


@pytest.mark.slow
@pytest.mark.skipif(not PEOPLE.is_dir(), reason="needs ../shared/data/people")
def test_recipe_quick_screens_every_lever_then_runs_the_finals(tmp_path):
    out = tmp_path / "recipe.json"
    run_script("recipe.py", "--quick", "--people", str(PEOPLE), "--out", str(out),
               cache=tmp_path / "cache", timeout=1800)
    result = json.loads(out.read_text())
    runs = [r["run"] for r in result["rows"]]
    assert runs[:8] == ["screen_base", "screen_crop160", "screen_light_aug", "screen_strong_aug",
                        "screen_ohem", "screen_boundary", "screen_cosine_warmup",
                        "screen_synthetic"]
    for short in ("fast_scnn", "lraspp_small", "searched_child"):
        assert f"start_{short}" in runs and f"final_{short}" in runs
    distilled = result["rows"][-1]
    assert distilled["run"] == "final_searched_child_distilled" and distilled["teacher"]
    for row in result["rows"]:
        assert 0.0 <= row["miou"] <= 1.0 and row["steps"] > 0 and positive(row["minutes"])
        assert Path(row["checkpoint"]).exists()
    assert out.with_suffix(".png").exists()
    assert result["recipe"]["name"] == "people"
    # a second run finds every piece in its state and trains nothing again
    before = out.read_text()
    run_script("recipe.py", "--quick", "--people", str(PEOPLE), "--out", str(out),
               cache=tmp_path / "cache", timeout=600)
    again = json.loads(out.read_text())
    assert [r["miou"] for r in again["rows"]] == [r["miou"] for r in json.loads(before)["rows"]]
    assert again["wall_seconds_this_run"] < 60


@pytest.mark.slow
@pytest.mark.skipif(not (PEOPLE.is_dir() and CCP.is_dir()), reason="needs ../shared/data")
def test_recipe_quick_on_two_folders_trains_a_teacher_and_distils_it_into_every_model(tmp_path):
    out = tmp_path / "combined.json"
    run_script("recipe.py", "--quick", "--data", str(PEOPLE), "--data", str(CCP), "--no-start",
               "--teacher-minutes", "0.2", "--teacher-size", "128", "--out", str(out),
               cache=tmp_path / "cache", timeout=1800)
    result = json.loads(out.read_text())
    runs = [r["run"] for r in result["rows"]]
    assert not any(run.startswith("start_") for run in runs)
    assert "teacher_lraspp_large_128px" in runs
    teacher = next(r for r in result["rows"] if r["run"].startswith("teacher_"))
    assert teacher["recipe"]["image_size"] == 128
    for short in ("fast_scnn", "lraspp_small", "searched_child"):
        distilled = next(r for r in result["rows"] if r["run"] == f"final_{short}_distilled")
        assert distilled["teacher"] == teacher["checkpoint"]
    for row in result["rows"]:  # each folder's own val mIoU beside the pooled one
        assert set(row["per_set_miou"]) == {PEOPLE.name, CCP.name}
        assert all(0.0 <= v <= 1.0 for v in row["per_set_miou"].values())
    assert result["settings"]["data"] == [str(PEOPLE), str(CCP)]


@pytest.mark.slow
def test_amp_smoke_times_f32_and_bf16_training_steps(tmp_path):
    run_script("amp.py", "--smoke", cache=tmp_path)
    result = json.loads((BENCHMARKS / "results" / "amp-smoke.json").read_text())
    (row,) = result["rows"]
    assert positive(row["f32_ms"]) and positive(row["bf16_ms"])
    assert math.isfinite(row["bf16_loss"]) and "busy" in result["load"]


@pytest.mark.slow
def test_video_e2e_only_writes_the_stage_table_alone(tmp_path):
    out = tmp_path / "video_e2e.json"
    run_script("video.py", "--quick", "--e2e-only", "--busy-retries", "1", "--out", str(out),
               cache=tmp_path / "cache")
    result = json.loads(out.read_text())
    assert "refinement" not in result and "fps" not in result  # sections 2-4 skipped
    rows = result["end_to_end"]["rows"]
    assert [(r["mode"], r["refinement"]) for r in rows] == [
        ("sync", "fast guided (default)"), ("sync", "none"),
        ("async", "fast guided (default)"), ("async", "none")]
    for row in rows:
        assert positive(row["fps"]) and positive(row["total_ms"])
        assert row["fps"] == pytest.approx(1000 / row["total_ms"], rel=0.05)
        # a busy row was measured again, at most once more here; the busy attempts are kept
        assert 1 <= row["attempts"] <= 2
        assert len(row["busy_attempts_fps"]) == row["attempts"] - 1
