"""Smoke tests of the speed and accuracy benchmark scripts at tiny sizes (they print tables; nothing timed)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

Loader = Callable[[str], ModuleType]


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_step_time_prints_a_ratio_row_per_shape(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str], clock: str
) -> None:
    step_time = load_benchmark("step_time")
    argv = ["--threads", "1", "--steps", "1", "--warmup", "0", "--shapes", "64-64-64-10/b32", "--clock", clock]
    rows = step_time.main(argv)
    assert [r["shape"] for r in rows] == ["64-64-64-10/b32"]
    expected = {"AM-mem", "AM-Adam", "AM-auto", "AM-mem/4", "AM-mem 3", "AM-Adam 3", "backprop-Adam",
                "backprop-Adam fused", "AM-mem sample", "AM-auto sample"}
    assert expected <= set(rows[0]) and all(rows[0][k] > 0 for k in expected)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 64-64-64-10/b32")]
    assert len(lines) == 1 and len(lines[0].strip("|").split("|")) == 17
    # the layers and cadence "auto" chose (then the class clock's cost)
    assert lines[0].split("|")[-4].strip() == "mem/mem, solve every 2"


def test_step_time_refuses_the_cpu_clock_on_a_gpu(load_benchmark: Loader) -> None:
    with pytest.raises(SystemExit):
        load_benchmark("step_time").main(["--device", "cuda", "--clock", "cpu"])


def test_prequential_reports_accuracy_for_am_and_backprop(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    prequential = load_benchmark("prequential")
    result = prequential.main(["--widths", "64,16,10"])
    out = capsys.readouterr().out
    assert "AM-mem minus best backprop Adam" in out and "AM-auto minus the best single variant" in out
    accuracies = [v["accuracy"] for v in result.values()]
    assert len(accuracies) == 14
    assert all(0.0 <= a <= 1.0 for a in accuracies) and max(accuracies) > 0.5


def test_prequential_over_seeds_reports_each_seed_and_their_mean(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    prequential = load_benchmark("prequential")
    one = prequential.main(["--widths", "64,16,10", "--seed", "1"])
    capsys.readouterr()
    both = prequential.main(["--widths", "64,16,10", "--seeds", "0", "1"])
    out = capsys.readouterr().out
    assert "(mean of 2 seeds)" in out
    row = next(line for line in out.splitlines() if line.startswith("| AM-mem |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    seed0, seed1, mean = float(cells[1]), float(cells[2]), float(cells[3])
    assert f"{one['64,16,10 AM-mem']['accuracy']:.4f}" == cells[2]  # a seed's run does not depend on the others
    assert abs(mean - (seed0 + seed1) / 2) < 1e-4 and both["64,16,10 AM-mem"]["sd"] >= 0.0
    with pytest.raises(SystemExit):
        prequential.main(["--seeds", "0", "0"])


def test_memory_solvers_exact_solves_agree_and_inexact_ones_do_not(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    memory_solvers = load_benchmark("memory_solvers")
    result = memory_solvers.main(["--repeats", "1", "--shapes", "33x8/b16"])["33x8/b16"]
    exact_solves = ("Cholesky + triangular (stream_am)", "the same, tested by torch.where", "cholesky_solve",
                    "LU solve", "explicit inverse")
    for exact in exact_solves:
        assert result[exact][1] is not None and result[exact][1] < 1e-4
    warm = result["no update (W_prev)"][1]
    assert warm is not None and warm > 1e-4  # the last batch moved the solution
    assert "backprop layer" in capsys.readouterr().out


def test_variants_prints_layer_costs_and_every_mix(load_benchmark: Loader, capsys: pytest.CaptureFixture[str]) -> None:
    variants = load_benchmark("variants")
    costs, accuracy = variants.main(["--layers", "9x4/b8", "--widths", "64,8,8,10", "--repeats", "2"])
    assert set(costs["9x4/b8"]) == {"mem", "adam", "bp", "model_extra", "model_bp"}
    mixes = accuracy["64,8,8,10"]
    assert {"mem/mem", "mem/adam", "adam/mem", "adam/adam"} < set(mixes)
    assert [k for k in mixes if k.startswith("auto=")] == ["auto=mem/mem"]  # narrow layers: memories
    assert all(0.0 <= v <= 1.0 for v in mixes.values()) and "| 9x4/b8 |" in capsys.readouterr().out


def test_distributed_counts_what_a_step_sends(load_benchmark: Loader) -> None:
    distributed = load_benchmark("distributed")
    mem, adam = distributed.payload("8-16-3/mem"), distributed.payload("8-16-3/adam")
    per_class = 3 * (9 * 9 + 16 * 9 + 1), 3 * (17 * 17 + 3 * 17 + 1)  # (class-clocked memories, 3 classes)
    assert mem["statistics"] == 3 + sum(per_class) and mem["variants"] == "mem"
    assert adam["statistics"] == 3 + 16 * 9 + per_class[1] and adam["bytes"] == 8 * (adam["statistics"] + 2)


@pytest.mark.slow
def test_distributed_runs_the_job_at_one_and_two_processes(load_benchmark: Loader, tmp_path) -> None:
    distributed = load_benchmark("distributed")
    result = distributed.main(["--out", str(tmp_path), "--rows", "256", "--features", "12", "--hidden", "8",
                               "--shapes", "8-16-3/mem"])
    assert {p: r["samples"] for p, r in result["jobs"].items()} == {1: 256, 2: 256}


def test_solve_cadence_prints_accuracy_and_cost_per_variant_and_cadence(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    solve_cadence = load_benchmark("solve_cadence")
    argv = ["--widths", "64,8,10", "--variants", "mem", "adam", "--solve-every", "1", "2", "--seeds", "0",
            "--steps", "1"]
    result = solve_cadence.main(argv)
    assert set(result) == {("mem", 1), ("mem", 2), ("adam", 1), ("adam", 2)}
    assert all(0.5 < r["accuracy"] <= 1.0 and r["ratio"] > 0 for r in result.values())
    assert result["mem", 1]["accuracy"] != result["mem", 2]["accuracy"]  # the cadence reaches every memory
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| mem |")]
    assert len(rows) == 2


def test_solve_cadence_times_only_without_seeds_and_refuses_accuracy_off_digits(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    solve_cadence = load_benchmark("solve_cadence")
    argv = ["--widths", "100,8,10", "--variants", "mem", "--solve-every", "1", "2", "--steps", "1"]
    result = solve_cadence.main([*argv, "--seeds"])
    assert set(result) == {("mem", 1), ("mem", 2)} and all(r["ratio"] > 0 for r in result.values())
    assert all(r["accuracy"] != r["accuracy"] for r in result.values())  # nan: no accuracy measured
    with pytest.raises(SystemExit):
        solve_cadence.main([*argv, "--seeds", "0"])
    assert "digits accuracy needs 64 inputs" in capsys.readouterr().err


def test_cost_model_times_every_top_mix_and_refits_the_constants(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from stream_am import variants

    cost_model = load_benchmark("cost_model")
    saved = tmp_path / "timings.json"
    result = cost_model.main(["--networks", "8-8-8-3/b4", "--steps", "1", "--save", str(saved)])
    rows = result["rows"]
    mixes = {*((v, s, "memory") for v in ("adam/adam", "adam/mem", "mem/mem") for s in (1, 2)),
             ("mem/mem", 1, "adam")}
    assert {("/".join(r["variants"]), r["solve_every"], r["readout"], r["memory_clock"]) for r in rows} == {
        *((*m, c) for m in mixes for c in ("class", "sample")), ("adam/adam", 1, "adam", "class")}  # no memory
    assert all(r["us"] > 0 and r["bp_us"] > 0 for r in rows)
    assert set(result["fitted"]) == set(cost_model.BP_NAMES + cost_model.AM_NAMES)
    assert all(v > 0 for v in result["fitted"].values())
    assert cost_model.main(["--load", str(saved)])["fitted"] == result["fitted"]  # the fit is deterministic
    some = cost_model.main(["--load", str(saved), "--fit", "CLASS_STEP_US", "CLASS_RATE"])["fitted"]
    for name, value in some.items():  # only the named constants move; the others keep the library's values
        if name not in ("CLASS_STEP_US", "CLASS_RATE"):
            assert value == pytest.approx(float(getattr(variants, name)), rel=1e-12)
    assert "| 8-8-8-3/b4 | mem/mem | 2 | memory | sample |" in capsys.readouterr().out
    # the script fits the library's own model: with the library's constants it predicts what the library does
    current = {n: float(getattr(variants, n)) for n in cost_model.BP_NAMES + cost_model.AM_NAMES}
    for row in rows:
        assert cost_model.predict(current, row) == pytest.approx(cost_model.library_ratio(row), rel=1e-9)


def test_imbalanced_prints_both_clocks_per_batch_size(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load_benchmark("imbalanced").main(["--n", "400", "--batch-sizes", "16"])
    assert [r["batch_size"] for r in rows] == [16]
    assert all(0.0 <= rows[0][k] <= 1.0 for k in ("accuracy class", "accuracy sample", "macro_f1 class"))
    assert sum(line.startswith("| 16 |") for line in capsys.readouterr().out.splitlines()) == 1


def test_cost_since_times_an_earlier_commit_beside_today(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                                     capture_output=True).returncode:
        pytest.skip("needs git and a clone of the repository")
    cost_since = load_benchmark("cost_since")
    rows = cost_since.main(["--ref", "HEAD", "--shapes", "64-64-10/b32", "9-64-2/b32", "--steps", "1", "--warmup", "0"])
    assert [r["shape"] for r in rows] == ["64-64-10/b32", "9-64-2/b32"]  # (the second: both companions)
    assert all(rows[0][k] > 0 for k in ("ref ms", "now ms", "now / ref", "now / now, sample clock",
                                        "now + companion ms", "now + companion / now"))
    assert "| 64-64-10/b32 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the earlier package is imported once per process
        cost_since.main(["--ref", "HEAD"])


def test_cost_since_refuses_an_unknown_ref(load_benchmark: Loader, tmp_path) -> None:
    with pytest.raises(SystemExit, match="--ref"):
        load_benchmark("cost_since").import_ref("no-such-ref-anywhere", tmp_path)


def test_late_feature_prints_a_row_per_batch_size_and_seed(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load_benchmark("late_feature").main(["--n", "400", "--t0", "100", "--batch-sizes", "8", "--seeds", "0"])
    assert [(r["batch_size"], r["seed"]) for r in rows] == [(8, 0)]
    assert all(0.0 <= rows[0][k] <= 1.0 for k in ("late", "control"))
    assert sum(line.startswith("| 8 | 0 |") for line in capsys.readouterr().out.splitlines()) == 1


def test_companion_prints_the_three_figures_per_scenario(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load_benchmark("companion").main(["--quick", "--scenarios", "phishing"])
    assert [r["scenario"] for r in rows] == ["phishing"]
    assert all(0.0 <= rows[0][k] <= 1.0 for k in ("alone", "linear", "pair"))
    assert sum(line.startswith("| phishing |") for line in capsys.readouterr().out.splitlines()) == 1


def test_river_loop_prints_wall_and_cpu_time_with_and_without_the_companion(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load_benchmark("river_loop").main(["--n", "200", "--streams", "phishing"])
    assert [(r["stream"], r["companion"]) for r in rows] == [("phishing", True), ("phishing", False)]
    assert all(r["wall"] > 0 and r["cpu"] > 0 and r["predict_us"] > 0 and r["learn_us"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert out.startswith("first model")
    assert sum(line.startswith("| phishing (200) |") for line in out.splitlines()) == 2


def test_river_loop_refuses_bad_sizes(load_benchmark: Loader) -> None:
    for argv in (["--n", "0"], ["--torch-threads", "0"]):
        with pytest.raises(SystemExit):
            load_benchmark("river_loop").main(argv)


def test_recovery_holds_every_mode_to_the_reference_level(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    recovery = load_benchmark("recovery")
    reference = np.array([1.0] * 100 + [0.0] * 10 + [1.0] * 200)
    slower = np.array([1.0] * 100 + [0.0] * 40 + [1.0] * 170)
    assert recovery.recovery(reference, reference, [100], 20) == [30]  # the first window back over 0.98
    assert recovery.recovery(slower, reference, [100], 20) == [60]
    assert recovery.recovery(np.zeros(310), reference, [100], 20) == [210]  # never: the segment's length
    totals = recovery.main(["--quick", "--seeds", "0", "--scenarios", "agrawal-abrupt"])
    assert set(totals["agrawal-abrupt"]) == {"filed", "linear", "ungated", "default", "drift-aware"}
    assert all(v >= 3 * 50 for v in totals["agrawal-abrupt"].values())  # three drift points, a window at least each
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("| agrawal-abrupt | 0 |") for line in lines) == 1


def test_long_stream_prints_ten_windows_per_setting_and_reloads(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    long_stream = load_benchmark("long_stream")
    rows = long_stream.main(["--n", "10240", "--settings", '{"code_steps": 2}'])
    assert [r["settings"] for r in rows] == [{}, {"code_steps": 2}]
    assert all(len(r["windows"]) == 10 and r["reload_equal"] and 0.0 <= r["overall"] <= 1.0 for r in rows)
    # the header and two rows
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]) == 3
    drifted = long_stream.main(["--n", "30720", "--drift-at", "10240", "--stream", "agrawal"])
    assert set(drifted[0]["after"]) == {5_000, 20_000} and drifted[0]["reload_equal"]
    for bad in (["--n", "100"], ["--settings", "{oops"], ["--settings", "[1]"], ["--n", "30720", "--drift-at", "0"],
                ["--n", "30720", "--drift-at", "20000"]):
        with pytest.raises(SystemExit):
            long_stream.main(bad)


def test_code_steps_counts_each_code_update_and_its_evaluations(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    code_steps = load_benchmark("code_steps")
    one = code_steps.main(["--n", "2048", "--streams", "hyperplane", "bananas"])
    three = code_steps.main(["--n", "2048", "--streams", "hyperplane", "--settings", '{"code_steps": 3}'])
    # 2,048 samples in batches of 32: 64 updates of the one code; an update evaluates one more time than it steps
    assert (one["hyperplane"]["updates"], one["hyperplane"]["evaluations"]) == (64, 2.0)
    assert (three["hyperplane"]["updates"], three["hyperplane"]["evaluations"]) == (64, 4.0)
    assert one["bananas"]["samples"] == 5300 and one["bananas"]["updates"] == 165  # a bundled stream: all of it
    rows = [one["hyperplane"], one["bananas"], three["hyperplane"]]
    assert all(0.0 <= r["moved"] <= 1.0 and 0.0 <= r["moved_last"] <= 1.0 for r in rows)
    assert sum(line.startswith("| hyperplane |") for line in capsys.readouterr().out.splitlines()) == 2
    for bad in (["--settings", "[1]"], ["--settings", "{x"], ["--n", "0"]):
        with pytest.raises(SystemExit):
            code_steps.main(bad)


def test_feature_growth_times_each_size_with_and_without_the_companion(
    load_benchmark: Loader, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load_benchmark("feature_growth").main(["--n", "40"])
    assert [(r["n"], r["companion"]) for r in rows] == [(40, True), (40, False)]
    assert all(r["wall"] > 0 and r["cpu"] > 0 for r in rows)
    assert sum(line.startswith("| 40 |") for line in capsys.readouterr().out.splitlines()) == 2
    with pytest.raises(SystemExit):
        load_benchmark("feature_growth").main(["--n", "0"])
