"""``stream-am scenario run`` refuses bad input before anything runs (exit 2, naming the option) and leaves no
stale file of an earlier run in its output directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import stream_am.scenarios.cli as scenario_cli
from stream_am.scenarios import _html, _report
from stream_am.scenarios._common import RunConfig

from stream_am import scenarios


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, RunConfig]]:
    """The scenarios ``main`` runs (by name, with their configuration), none of them really run."""
    seen: list[tuple[str, RunConfig]] = []

    def fake(scenario: scenarios.Scenario, cfg: RunConfig) -> dict:
        seen.append((scenario.name, cfg))
        return {"config": {"wall_time_s": 0.0}}

    monkeypatch.setattr(scenario_cli, "execute", fake)
    return seen


def _refused(capsys: pytest.CaptureFixture[str], option: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"stream-am scenario run: error: argument {option}: "), err
    return err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("out", ["/proc/stream-am-no/such", "/proc/self/stream-am-no"])
def test_an_out_that_cannot_be_created_is_refused_before_running(out, runs, capsys):
    assert scenario_cli.main(["run", "digits", "--quick", "--out", out]) == 2
    assert runs == [] and "cannot create or write this directory" in _refused(capsys, "--out")
    assert not Path(out).exists()


def test_an_empty_out_is_refused_not_read_as_the_current_directory(runs, capsys):
    with pytest.raises(SystemExit) as exited:  # (argparse's refusal: its usage, then the one error line)
        scenario_cli.main(["run", "digits", "--quick", "--out", ""])
    assert exited.value.code == 2 and runs == []
    assert "argument --out: expected a value, got an empty one" in capsys.readouterr().err


def test_an_out_that_cannot_be_written_is_refused_and_the_check_leaves_nothing(tmp_path, runs, capsys, monkeypatch):
    real_open = os.open

    def no_write(path, flags, *args):
        if Path(path).name.startswith(".stream-am-probe-"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    out = tmp_path / "new" / "deep"
    with monkeypatch.context() as patched:
        patched.setattr(os, "open", no_write)
        assert scenario_cli.main(["run", "digits", "--quick", "--out", str(out)]) == 2
    assert runs == [] and "(Permission denied)" in _refused(capsys, "--out")
    assert list(tmp_path.iterdir()) == []  # the directories the check made are gone
    assert scenario_cli.main(["run", "all", "--quick", "--out", str(out)]) == 0  # a good one: checked, then run
    assert [name for name, _ in runs] == scenarios.names() and list(tmp_path.iterdir()) == []


def test_an_output_name_taken_by_a_directory_is_refused(tmp_path, runs, capsys):
    (tmp_path / "results.json").mkdir()
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path)]) == 2
    assert runs == [] and "results.json there is a directory" in _refused(capsys, "--out")


@pytest.mark.parametrize("hidden", [["4097"], ["8", "100000000"], ["1180591620717411303424"], ["0"]])
def test_hidden_widths_beyond_the_cap_are_refused(hidden, tmp_path, runs, capsys):
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path), "--hidden", *hidden]) == 2
    assert runs == [] and "widths must be in [1, 4096]" in _refused(capsys, "--hidden")


@pytest.mark.parametrize("width", ["8_0", "\uff18", " 8"])
def test_hidden_widths_written_as_python_reads_them_are_refused(width, tmp_path, runs, capsys):
    """``int`` reads 8_0 as 80 and other scripts' digits; a user who typed them meant something else."""
    with pytest.raises(SystemExit) as info:
        scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path), "--hidden", width])
    assert info.value.code == 2 and runs == [] and "--hidden" in capsys.readouterr().err


def test_hidden_layers_whose_memories_cannot_fit_this_machine_are_refused(tmp_path, runs, capsys, monkeypatch):
    """helper-62's review: 32 layers of 4096 were taken, and would have exhausted the machine at the first step."""
    import stream_am.memory_budget as budget

    monkeypatch.setattr(budget, "physical_memory", lambda: 8 * 2**30)  # a machine of 8 GiB: half is 4
    too_large = ["4096"] * 2  # (about 1e8 numbers, 2.3 GiB at a step: taken)
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path), "--hidden", *too_large]) == 0
    too_large = ["4096"] * 4  # (about 2.4e8 numbers, 5.3 GiB: refused)
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path), "--hidden", *too_large]) == 2
    err = _refused(capsys, "--hidden")
    assert "even on one input and two classes" in err and "half this machine's 8 GiB" in err
    assert len(runs) == 1


def test_the_widest_hidden_layer_allowed_is_the_distributed_jobs(tmp_path, runs):
    from stream_am.distributed.options import MAX_HIDDEN

    assert MAX_HIDDEN == 4096
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path), "--hidden", "4096", "1"]) == 0
    assert runs[0][1].hidden == (4096, 1)


def test_learners_are_checked_against_every_scenario_before_any_runs(tmp_path, capsys):
    args = ["run", "all", "--quick", "--no-progress", "--out", str(tmp_path)]
    assert scenario_cli.main([*args, "--learners", "LogReg"]) == 2
    err = _refused(capsys, "--learners")
    assert "none of the learners ['LogReg'] runs in split-digits, permuted-digits" in err and "Replay" in err
    assert list(tmp_path.iterdir()) == []  # not one scenario ran


def test_a_learner_some_scenarios_lack_runs_where_it_applies(tmp_path, runs):
    args = ["run", "all", "--quick", "--out", str(tmp_path), "--learners", "LogReg", "AM-mem"]
    assert scenario_cli.main(args) == 0
    picked = {name: cfg.pick(scenarios.get(name).learners) for name, cfg in runs}
    assert list(picked) == scenarios.names()
    assert picked["digits"] == ["AM-mem", "LogReg"] and picked["split-digits"] == ["AM-mem"]


@pytest.mark.parametrize("name", ["digits", "all"])
def test_a_misspelled_learner_is_refused(name, tmp_path, capsys):
    args = ["run", name, "--quick", "--no-progress", "--out", str(tmp_path), "--learners", "LogReg", "LogRegg"]
    assert scenario_cli.main(args) == 2
    err = _refused(capsys, "--learners")
    assert "unknown learner 'LogRegg'" in err and "LogReg, HAT" in err
    assert list(tmp_path.iterdir()) == []


def test_each_scenarios_learners_are_the_names_its_run_picks_from(tmp_path):
    class Stop(Exception):
        pass

    asked: list[tuple[str, ...]] = []

    class Spy(RunConfig):
        def pick(self, names):
            asked.append(tuple(names))
            raise Stop

    for s in scenarios.REGISTRY.values():
        with pytest.raises(Stop):
            s.run(Spy(out=tmp_path, quick=True, progress=False))
        assert asked[-1] == s.learners, s.name


def test_a_run_removes_the_files_of_an_earlier_run_and_no_other(tmp_path):
    stale = ["accuracy_matrix.png", "report.html", "results.json", "results.md", "accuracy.png"]
    kept = ["notes.txt", "accuracy_matrix.png.bak", ".results.json.old"]
    for name in stale + kept:
        (tmp_path / name).write_text("earlier")
    (tmp_path / "plots").mkdir()
    args = ["run", "digits", "--quick", "--no-progress", "--learners", "LogReg", "--out", str(tmp_path)]
    assert scenario_cli.main(args) == 0
    assert not (tmp_path / "accuracy_matrix.png").exists() and not (tmp_path / "report.html").exists()
    assert json.loads((tmp_path / "results.json").read_text())["scenario"] == "digits"
    assert all((tmp_path / name).read_text() == "earlier" for name in kept) and (tmp_path / "plots").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, "plots", "accuracy.png", "results.json",
                                                                 "results.md"])


def test_every_file_a_run_writes_is_one_it_removes_next_time(tmp_path):
    args = ["run", "split-digits", "--quick", "--no-progress", "--learners", "HAT", "--html"]
    assert scenario_cli.main([*args, "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(_report.OUTPUTS)


def test_results_are_written_atomically(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("keep")
    (tmp_path / "results.json").symlink_to(elsewhere)
    _report.write_results(tmp_path, "s", {"seed": 0}, {"A": {"accuracy": 0.5}})
    assert elsewhere.read_text() == "keep"  # replaced, not written through
    assert json.loads((tmp_path / "results.json").read_text())["learners"] == {"A": {"accuracy": 0.5}}
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        _report.write_results(tmp_path, "s", {"seed": 1}, {"B": {"accuracy": 0.7}})
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before  # the old results, and no temporary file


@pytest.mark.parametrize("write", ["curves", "matrices", "html"])
def test_plots_and_the_report_are_written_whole_or_not_at_all(tmp_path, monkeypatch, write):
    name = {"curves": "curves.png", "matrices": "matrices.png", "html": "report.html"}[write]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep")
    (tmp_path / name).symlink_to(elsewhere)
    doc = {"scenario": "s", "config": {"seed": 0}, "learners": {"A": {"accuracy": 0.5}}}

    def run():
        if write == "curves":
            _report.plot_curves(tmp_path / name, {"A": (np.arange(1, 5), np.full(4, 0.5))}, [], "t")
        elif write == "matrices":
            _report.plot_matrices(tmp_path / name, {"A": np.eye(2)}, "t")
        else:
            _html.write_html(tmp_path / name, doc, "d", {"A": (np.arange(1, 5), np.full(4, 0.5))})

    run()
    assert elsewhere.read_text() == "keep" and not (tmp_path / name).is_symlink()  # replaced, not written through
    signature = b"<!doctype" if write == "html" else b"\x89PNG"
    assert (tmp_path / name).read_bytes().startswith(signature)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space"):
        run()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # the old file, and no temporary one


def test_an_out_with_a_name_over_the_file_systems_limit_is_refused_not_a_traceback(tmp_path, runs, capsys,
                                                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert scenario_cli.main(["run", "phishing", "--quick", "--out", "a" * 300]) == 2
    assert runs == [] and "cannot create or write this directory" in _refused(capsys, "--out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may search any directory")
def test_an_out_under_a_directory_without_search_permission_is_refused(tmp_path, runs, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        assert scenario_cli.main(["run", "digits", "--quick", "--out", str(locked / "sub")]) == 2
    finally:
        locked.chmod(0o700)
    assert runs == [] and "(Permission denied)" in _refused(capsys, "--out")


def test_the_probe_name_is_as_long_as_any_temporary_name_a_run_writes(tmp_path, monkeypatch):
    from stream_am import arguments

    opened: list[str] = []
    real_open = os.open

    def spy(path, flags, *args):
        opened.append(Path(path).name)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", spy)
    arguments.make_writable(tmp_path, [])
    longest = max(len(_report.temp_path(tmp_path / name).name) for name in _report.OUTPUTS)
    assert len(opened) == 1 and len(opened[0]) == arguments.PROBE_NAME_LENGTH >= max(64, longest)
    assert list(tmp_path.iterdir()) == []


def test_more_hidden_layers_than_the_distributed_jobs_are_refused(tmp_path, runs, capsys):
    from stream_am.distributed.options import MAX_LAYERS

    args = ["run", "digits", "--quick", "--out", str(tmp_path), "--hidden"]
    assert scenario_cli.main([*args, *["8"] * (MAX_LAYERS + 1)]) == 2
    assert runs == [] and f"must have at most {MAX_LAYERS} layers, got {MAX_LAYERS + 1}" in _refused(capsys, "--hidden")
    assert scenario_cli.main([*args, *["8"] * MAX_LAYERS]) == 0 and runs[0][1].hidden == (8,) * MAX_LAYERS


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("name", _report.OUTPUTS)
def test_an_output_name_taken_by_a_named_pipe_is_refused(name, tmp_path, runs, capsys):
    os.mkfifo(tmp_path / name)
    assert scenario_cli.main(["run", "digits", "--quick", "--html", "--out", str(tmp_path)]) == 2
    assert runs == [] and f"{name} there is a named pipe" in _refused(capsys, "--out")


def test_an_output_name_that_links_to_a_file_is_accepted(tmp_path, runs):
    (tmp_path / "elsewhere.html").write_text("mine")
    (tmp_path / "report.html").symlink_to(tmp_path / "elsewhere.html")
    assert scenario_cli.main(["run", "digits", "--quick", "--html", "--out", str(tmp_path)]) == 0
    assert [name for name, _ in runs] == ["digits"]


def test_an_out_through_a_missing_directory_and_back_writes_in_the_directory(tmp_path):
    (tmp_path / "accuracy_matrix.png").write_text("earlier")  # (digits writes no matrix)
    out = tmp_path / "missing" / ".."
    args = ["run", "digits", "--quick", "--no-progress", "--learners", "LogReg", "--out", str(out)]
    assert scenario_cli.main(args) == 0
    assert json.loads((tmp_path / "results.json").read_text())["scenario"] == "digits"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.png", "missing", "results.json", "results.md"]


def test_an_empty_learner_name_is_an_unknown_learner_named_with_the_known_ones(tmp_path, capsys):
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path), "--learners", ""]) == 2
    err = _refused(capsys, "--learners")
    assert "unknown learner ''" in err and "AM-mem" in err


def test_an_out_that_is_not_utf8_is_reported_on_a_strict_stdout(tmp_path, runs, monkeypatch):
    # (a UTF-8 locale other than C.UTF-8, or PYTHONIOENCODING=utf-8, makes stdout strict: the line saying where the
    # results are raised UnicodeEncodeError after the run, status 1 and a traceback)
    import io
    import sys

    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdout", stdout)
    out = tmp_path / os.fsdecode(b"x\xff")
    assert scenario_cli.main(["run", "phishing", "--quick", "--no-progress", "--out", str(out)]) == 0
    stdout.flush()
    assert stdout.buffer.getvalue().decode().startswith(f"phishing: {tmp_path}/x\ufffd/results.md")
