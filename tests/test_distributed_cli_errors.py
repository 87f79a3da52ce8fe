"""The training job refuses what a user can get wrong, naming it, with status 2 and no traceback: a resume with
other settings, bad rows in a source, a corrupt or foreign checkpoint, a checkpoint directory that cannot be
made, options out of bounds. A refused resume leaves the checkpoint byte for byte as it was."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from distributed_worker import write_csvs
from safetensors.torch import save_file

from stream_am.distributed.checkpoint import FORMAT
from stream_am.distributed.job import main

ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
ARGS = ["--target", "label", "--n-classes", "3", "--hidden", "8", "--report-every", "0", "--checkpoint-every", "0"]


@pytest.fixture(name="run")
def _run(monkeypatch, capsys):
    """``run(*argv) -> (status, stdout, stderr)``: the job's ``main`` in this process, as a fresh group of one."""

    def run(*argv: str) -> tuple[int, str, str]:
        for key in ENV:  # main sets them for its group of one: each run picks a fresh port
            monkeypatch.setenv(key, "x")
            monkeypatch.delenv(key)
        try:
            status = main(list(argv))
        except SystemExit as exc:  # argparse's own errors
            status = int(exc.code or 0)
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return status, out, err

    return run


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())} if directory.is_dir() else {}


def _csv(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# ------------------------------------------------------------------ 1. resuming with other settings
def test_a_resume_with_other_settings_is_refused_naming_the_flag_and_leaves_the_checkpoint(tmp_path, run):
    part0, part1 = write_csvs(tmp_path, files=2, rows=192)
    ck = tmp_path / "ck"
    base = ["--source", str(part0), "--checkpoint-dir", str(ck), *ARGS]
    assert run(*base, "--batch-size", "32", "--max-steps", "3")[0] == 0
    before = _files(ck)
    cases = [(["--batch-size", "64"], "--batch-size"), (["--seed", "1"], "--seed"),
             (["--activation", "tanh"], "--activation"), (["--variant", "adam"], "--variant"),
             (["--hidden", "16"], "--hidden"), (["--n-classes", "4"], "--n-classes"),
             (["--task", "regression"], "--task")]
    for extra, flag in cases:
        args = [a for a in base if a not in ("--n-classes", "3")] if flag == "--task" else base  # (none in regression)
        status, out, err = run(*args, *extra)
        assert status == 2 and flag in err and "checkpoint" in err, (extra, err)
        assert out == "" and _files(ck) == before, extra
    status, _, err = run("--source", str(part1), "--checkpoint-dir", str(ck), *ARGS)
    assert status == 2 and "--source" in err and _files(ck) == before
    # the settings that may change do: 3 more steps, with other reports, threads and timeout
    status, out, _ = run(*base, "--max-steps", "6", "--checkpoint-every", "2", "--timeout", "30", "--threads", "1")
    done = json.loads(out.splitlines()[-1])
    assert status == 0 and done["resumed_from"] == 3 and done["step"] == 6 and done["samples"] == 192


# ------------------------------------------------------------------ 2. bad rows in a source
GOOD = [f"{i % 5}.5,{i % 7},{i % 3}" for i in range(40)]
BAD_ROWS = [
    ("nan,1,0", "'a'"), ("inf,1,0", "'a'"), ("1e10,1,0", "'a'"), ("x,1,0", "'a'"), (",1,0", "'a'"),
    ("1,1,3", "--n-classes"), ("1,1,-1", "--n-classes"), ("1,1,1.5", "--n-classes"), ("1,1,", "'y'"),
    ("1,1,cat", "'y'"),
]


@pytest.mark.parametrize(("row", "named"), BAD_ROWS)
def test_a_bad_row_in_the_first_file_is_refused_before_training_naming_the_file_row_and_column(
        tmp_path, run, row, named):
    source = _csv(tmp_path / "d.csv", "a,b,y", *GOOD[:5], row, *GOOD)
    status, out, err = run("--source", str(source), "--target", "y", "--n-classes", "3", "--hidden", "8",
                           "--checkpoint-dir", str(tmp_path / "ck"))
    assert status == 2 and str(source) in err and "row 6" in err and named in err, err
    assert out == "" and not (tmp_path / "ck").exists()


@pytest.mark.parametrize("second", [
    ("a,c,y", *GOOD), ("y,a,b", *GOOD), ("a,b,c,y", "1,2,3,0"), (""), ("a,b,y",), ("a,b,y", "1,z,0"),
], ids=["other-columns", "reordered", "more-columns", "empty", "header-only", "non-numeric"])
def test_a_second_file_that_does_not_fit_is_refused_before_training(tmp_path, run, second):
    first = _csv(tmp_path / "first.csv", "a,b,y", *GOOD)
    other = tmp_path / "second.csv"
    other.write_text("\n".join(second) + "\n" if isinstance(second, tuple) else "")
    status, out, err = run("--source", str(first), str(other), "--target", "y", "--n-classes", "3",
                           "--checkpoint-dir", str(tmp_path / "ck"), "--hidden", "8")
    assert status == 2 and "--source" in err and str(other) in err, err
    assert out == "" and not (tmp_path / "ck").exists()


def test_a_file_of_only_the_target_and_regression_targets_are_checked(tmp_path, run):
    only = _csv(tmp_path / "only.csv", "y", "0", "1", "2")
    status, _, err = run("--source", str(only), "--target", "y", "--n-classes", "3", "--checkpoint-dir",
                         str(tmp_path / "ck"))
    assert status == 2 and "only the target" in err and str(only) in err
    bad = _csv(tmp_path / "r.csv", "a,y", "1,0.5", "2,inf")
    status, _, err = run("--source", str(bad), "--target", "y", "--task", "regression", "--checkpoint-dir",
                         str(tmp_path / "ck"))
    assert status == 2 and "row 2" in err and "'y'" in err
    assert not (tmp_path / "ck").exists()


def test_a_bad_row_deep_in_the_stream_refuses_the_job_before_any_step(tmp_path, run):
    rows = [f"{i % 5}.5,{i % 7},{i % 3}" for i in range(4200)]
    rows[4150] = "1,nan,0"  # past the first chunk of 4096 rows
    source = _csv(tmp_path / "d.csv", "a,b,y", *rows)
    status, out, err = run("--source", str(source), "--target", "y", "--n-classes", "3", "--hidden", "4",
                           "--batch-size", "1024", "--variant", "mem", "--checkpoint-dir", str(tmp_path / "ck"),
                           "--checkpoint-every", "2", "--report-every", "0")
    assert status == 2 and "row 4151" in err and "'b'" in err and str(source) in err, err
    assert out == "" and not (tmp_path / "ck").exists()  # refused before the checkpoint directory was made


@pytest.mark.parametrize("column", ["b", "y"])
def test_true_and_false_are_not_numbers_even_where_a_whole_chunk_holds_them(tmp_path, run, column):
    rows = [f"{i % 5}.5,{i % 7},{i % 3}" for i in range(4096)]  # the first chunk: numbers
    rows += [f"1,{'True' if i % 2 else 'False'},0" if column == "b" else f"1,2,{'True' if i % 2 else 'False'}"
             for i in range(100)]  # the second chunk reads as booleans
    source = _csv(tmp_path / "d.csv", "a,b,y", *rows)
    status, _, err = run("--source", str(source), "--target", "y", "--n-classes", "3", "--checkpoint-dir",
                         str(tmp_path / "ck"))
    assert status == 2 and "row 4097" in err and f"column '{column}'" in err and "'False' is not a number" in err
    assert not (tmp_path / "ck").exists()


def test_a_source_that_goes_bad_during_training_stops_at_the_row_and_keeps_the_checkpoints(tmp_path):
    from distributed_worker import group_of_one

    from stream_am import OnlineAM
    from stream_am.distributed.data_parallel import DataParallelAM
    from stream_am.distributed.job import train
    from stream_am.distributed.sources import check_sources, file_rows
    from stream_am.estimators import build_mlp

    rows = [f"{i % 5}.5,{i % 7},{i % 3}" for i in range(4200)]
    source = _csv(tmp_path / "d.csv", "a,b,y", *rows)
    assert check_sources([source], "y", 3) == 2  # checked whole before the job starts
    stream = file_rows([source], "y", n_classes=3)
    rows[4150] = "1,nan,0"  # then the file changes before training reads it
    _csv(tmp_path / "d.csv", "a,b,y", *rows)
    am = OnlineAM(build_mlp(2, 3, (4,), "relu", seed=0), variant="mem", loss="cross_entropy", seed=0)
    with group_of_one(), pytest.raises(ValueError, match=r"row 4151, column 'b'"):
        train(DataParallelAM(am), stream, batch_size=1024, n_inputs=2, checkpoint_dir=tmp_path / "ck",
              checkpoint_every=2)
    assert json.loads((tmp_path / "ck" / "checkpoint.json").read_text())["step"] == 4  # the steps before it


# ------------------------------------------------------------------ 3. corrupt or foreign checkpoints
def _checkpoint_cases(ck: Path, good: bytes) -> dict[str, object]:
    meta = {"job": json.dumps({"format": FORMAT, "step": 1})}
    return {
        "garbage": b"not a safetensors file at all",
        "truncated": good[: len(good) // 2],
        "metadata-not-json": lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata={"job": "{oops"}),
        "foreign-format": lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata={"job": '{"format": "x"}'}),
        "foreign-tensors": lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata=meta),
        "directory": lambda p: p.mkdir(),
    }


def test_a_corrupt_or_foreign_checkpoint_is_refused_naming_the_checkpoint_dir(tmp_path, run):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    ck = tmp_path / "ck"
    base = ["--source", str(source), "--checkpoint-dir", str(ck), *ARGS]
    assert run(*base)[0] == 0
    good = (ck / "checkpoint.safetensors").read_bytes()
    for name, make in _checkpoint_cases(ck, good).items():
        path = ck / "checkpoint.safetensors"
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
        make(path) if callable(make) else path.write_bytes(make)  # type: ignore[operator,arg-type]
        before = _files(ck) if not path.is_dir() else None
        status, out, err = run(*base)
        assert status == 2 and "--checkpoint-dir" in err and str(path) in err and out == "", (name, err)
        if before is not None:
            assert _files(ck) == before, name


def test_a_checkpoint_of_another_network_is_refused_even_without_its_configuration(tmp_path, run):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    ck = tmp_path / "ck"
    assert run("--source", str(source), "--checkpoint-dir", str(ck), *ARGS)[0] == 0
    path = ck / "checkpoint.safetensors"
    from safetensors.torch import load_file

    save_file(load_file(str(path)), str(path), metadata={"job": json.dumps({"format": FORMAT, "step": 2})})
    before = _files(ck)
    status, _, err = run("--source", str(source), "--checkpoint-dir", str(ck), *ARGS[:4], "--hidden", "4")
    assert status == 2 and "--checkpoint-dir" in err and "does not fit" in err and _files(ck) == before


# ------------------------------------------------------------------ 4. a checkpoint directory that cannot be made
@pytest.mark.parametrize("where", ["file/sub", "/proc/stream_am_ckpt"])
def test_a_checkpoint_dir_that_cannot_be_made_is_refused_before_training(tmp_path, run, where):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    ck = tmp_path / where.replace("file", source.name) if not where.startswith("/") else Path(where)
    status, out, err = run("--source", str(source), "--checkpoint-dir", str(ck), *ARGS)
    assert status == 2 and "--checkpoint-dir" in err and out == "", err


def test_a_checkpoint_dir_that_cannot_be_written_is_refused_and_left_as_it_was(tmp_path, run, monkeypatch):
    """A directory that can be made but not written (a read-only mount, which root's ``os.access`` does not see):
    the probe file fails, the job is refused before training, and the directories it made are removed."""
    import os

    from stream_am import arguments

    (source,) = write_csvs(tmp_path, files=1, rows=64)
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if Path(path).name.startswith(".stream-am-probe"):
            raise PermissionError(13, "Read-only file system")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(arguments.os, "open", read_only)
    status, out, err = run("--source", str(source), "--checkpoint-dir", str(tmp_path / "ck" / "deep"), *ARGS)
    assert status == 2 and "--checkpoint-dir" in err and "cannot be created and written" in err, err
    assert "Read-only file system" in err and out == "" and not (tmp_path / "ck").exists()


# ------------------------------------------------------------------ 5. options out of bounds
@pytest.mark.parametrize(("extra", "flag"), [
    (["--timeout", "inf"], "--timeout"), (["--timeout", "1e308"], "--timeout"), (["--timeout", "0.001"], "--timeout"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**63)], "--seed"), (["--threads", "100000"], "--threads"),
    (["--activation", "bogus"], "--activation"), (["--variant", "bogus"], "--variant"),
    (["--n-classes", "100000000000"], "--n-classes"), (["--hidden", "100000000"], "--hidden"),
    (["--hidden", ",".join(["4"] * 33)], "--hidden"),
    (["--checkpoint-dir", ""], "--checkpoint-dir"),  # (after the first: argparse keeps the last; "" is not ".")
    # written as Python would read them, not as a user means them (8_0 was 80; other scripts' digits were read)
    (["--hidden", "8_0"], "--hidden"), (["--hidden", "8,"], "--hidden"), (["--hidden", " 8"], "--hidden"),
    (["--batch-size", "3_2"], "--batch-size"), (["--n-classes", "\uff13"], "--n-classes"),
    (["--task", "regression"], "--n-classes"),  # (ARGS pass --n-classes 3: a regression has none)
])
def test_options_out_of_bounds_are_refused_naming_the_flag(tmp_path, run, extra, flag):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    status, out, err = run("--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS, *extra)
    assert status == 2 and flag in err and out == "", err
    assert not (tmp_path / "ck").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="NCCL may work where CUDA is available")
def test_the_nccl_backend_without_cuda_is_refused(tmp_path, run):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    status, _, err = run("--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS, "--backend", "nccl")
    assert status == 2 and "--backend" in err


def test_train_stream_refuses_to_resume_with_another_batch_size(tmp_path):
    from distributed_worker import group_of_one

    from stream_am import OnlineAM
    from stream_am.distributed.job import train_stream
    from stream_am.estimators import build_mlp

    stream = [({"a": float(i % 5), "b": float(i % 7)}, i % 3) for i in range(128)]

    def learner() -> OnlineAM:
        return OnlineAM(build_mlp(2, 3, (4,), "relu", seed=0), variant="mem", loss="cross_entropy", seed=0)

    with group_of_one():
        assert train_stream(learner(), stream, batch_size=32, checkpoint_dir=tmp_path, max_steps=2)["step"] == 2
        before = _files(tmp_path)
        with pytest.raises(ValueError, match="batch_size 16 differs from the checkpoint's 32"):
            train_stream(learner(), stream, batch_size=16, checkpoint_dir=tmp_path)
    assert _files(tmp_path) == before


def test_reports_carry_the_mean_loss_and_accuracy_since_the_last_and_a_finished_job_reports_in_full(tmp_path, run):
    source = _csv(tmp_path / "d.csv", "a,b,y", *GOOD)  # 40 rows: steps of 16, 16 and 8
    argv = ["--source", str(source), "--target", "y", "--n-classes", "3", "--hidden", "4", "--batch-size", "16",
            "--checkpoint-dir", str(tmp_path / "ck"), "--report-every", "2"]
    status, out, _ = run(*argv)
    lines = [json.loads(line) for line in out.splitlines()]
    assert status == 0 and [r["event"] for r in lines] == ["progress", "done"]
    progress, done = lines
    assert progress["step"] == 2 and done["step"] == 3 and done["samples"] == 40
    for r in lines:  # progress: the 32 samples of steps 1 and 2; done: the 8 of step 3
        assert r["loss"] > 0 and 0.0 <= r["accuracy"] <= 1.0
    status, out, _ = run(*[a if a != str(tmp_path / "ck") else str(tmp_path / "ck3") for a in argv[:-1]], "3")
    last = [json.loads(line) for line in out.splitlines()]  # the last step is a report's: nothing after it
    assert status == 0 and [(r["event"], r["step"]) for r in last] == [("progress", 3), ("done", 3)]
    assert last[0]["loss"] > 0 and last[1]["loss"] is None and last[1]["accuracy"] is None
    status, out, _ = run(*argv)  # resumed with nothing left to learn
    again = json.loads(out.splitlines()[-1])
    assert status == 0 and again == {
        "event": "done", "world_size": 1, "resumed_from": 3, "step": 3, "samples": 40, "seconds": 0.0,
        "samples_per_s": 0.0, "loss": None, "accuracy": None,
    }


# ------------------------------------------------------------------ helper-59's review
@pytest.mark.parametrize(("header", "rows", "says"), [
    ("a,b,label", ["0.1,0.2,1,7", "0.3,0.4,0,7"], "hold more fields than its header names"),  # (read shifted by one)
    ("label,b,label", ["0,0.2,1", "1,0.4,0"], "names the column 'label' twice"),  # (the second read as label.1)
])
def test_a_csv_pandas_would_read_shifted_or_renamed_is_refused_naming_it(tmp_path, run, header, rows, says):
    source = _csv(tmp_path / "s.csv", header, *rows)
    status, _, err = run("--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS)
    assert status == 2 and "s.csv" in err and says in err
    assert not (tmp_path / "ck").exists()


def test_classes_whose_memories_cannot_fit_this_machine_are_refused_before_anything(tmp_path, run):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    args = ["--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), "--target", "label",
            "--n-classes", "100000", "--hidden", "64", "--report-every", "0"]
    status, _, err = run(*args)  # (about 4e10 numbers: a step failed in the allocator with a traceback)
    assert status == 2 and "--n-classes 100000 with --hidden 64" in err and "half this machine's" in err
    assert not (tmp_path / "ck").exists()


def test_a_resume_after_a_partial_batch_learns_the_rows_that_arrived_since(tmp_path, run):
    (full,) = write_csvs(tmp_path, files=1, rows=256)
    lines = full.read_text().splitlines()
    source, ck = tmp_path / "grow.csv", tmp_path / "ck"
    source.write_text("\n".join(lines[:1 + 200]) + "\n")  # 6 batches of 32 and 8 rows
    base = ["--source", str(source), "--checkpoint-dir", str(ck), *ARGS, "--batch-size", "32"]
    assert run(*base)[0] == 0
    source.write_text("\n".join(lines) + "\n")  # 56 rows more
    status, out, _ = run(*base)
    done = json.loads(out.strip().splitlines()[-1])
    assert status == 0 and done["resumed_from"] == 7 and done["samples"] == 256  # (it skipped 224 rows: 232 seen)


def test_a_resume_from_another_directory_finds_the_same_file_and_refuses_another(tmp_path, run, monkeypatch):
    (source,) = write_csvs(tmp_path, files=1, rows=128)
    ck = tmp_path / "ck"
    monkeypatch.chdir(tmp_path)
    assert run("--source", source.name, "--checkpoint-dir", str(ck), *ARGS, "--max-steps", "1")[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / source.name).write_bytes(source.read_bytes())
    monkeypatch.chdir(other)
    assert run("--source", str(source), "--checkpoint-dir", str(ck), *ARGS, "--max-steps", "2")[0] == 0
    status, _, err = run("--source", source.name, "--checkpoint-dir", str(ck), *ARGS, "--max-steps", "3")
    assert status == 2 and "differs from the checkpoint's" in err


def test_a_checkpoint_dir_whose_name_is_not_utf8_resumes(tmp_path, run):
    (source,) = write_csvs(tmp_path, files=1, rows=128)
    ck = tmp_path / "ck\udcfe"  # (the byte 0xfe, as Python names it: safetensors' own open refused it)
    assert run("--source", str(source), "--checkpoint-dir", str(ck), *ARGS, "--max-steps", "1")[0] == 0
    status, out, _ = run("--source", str(source), "--checkpoint-dir", str(ck), *ARGS, "--max-steps", "2")
    assert status == 0 and json.loads(out.strip().splitlines()[-1])["resumed_from"] == 1


@pytest.mark.parametrize(("name", "head"), [
    ("blank-names", "a,,,label"),  # (pandas' "Unnamed: 1" and "Unnamed: 2": three features, as before)
    ("long-name", "a" * 200_000 + ",b,c,label"),  # (over csv's field limit: left to pandas, as before)
])
def test_headers_pandas_reads_are_taken(tmp_path, run, name, head):
    source = _csv(tmp_path / "s.csv", head, *[f"{i % 3 / 3},0.5,0.25,{i % 3}" for i in range(40)])
    status, out, err = run("--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS)
    assert status == 0 and json.loads(out.strip().splitlines()[-1])["samples"] == 40, err


@pytest.mark.parametrize("prefix", ["\ufeff", "\n"])
def test_a_duplicate_after_a_bom_or_a_blank_line_is_refused_too(tmp_path, run, prefix):
    source = tmp_path / "s.csv"
    source.write_text(prefix + "label,b,label\n" + "\n".join(f"{i % 3},0.5,{i % 3}" for i in range(8)) + "\n",
                      encoding="utf-8")
    status, _, err = run("--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS)
    assert status == 2 and "names the column 'label' twice" in err


@pytest.mark.parametrize("world", ["two", "0", "", "\uff12"])
def test_a_world_size_that_is_no_number_is_refused_naming_it(tmp_path, monkeypatch, capsys, world):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    monkeypatch.setenv("WORLD_SIZE", world)
    status = main(["--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS])
    out, err = capsys.readouterr()
    assert status == 2 and "WORLD_SIZE" in err and out == "" and not (tmp_path / "ck").exists()


def test_a_group_that_cannot_start_ends_the_job_with_status_1_and_one_line(tmp_path, monkeypatch, capsys):
    """A rank whose peers never start: the store's timeout error was a traceback."""
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}.items():
        monkeypatch.setenv(key, value)
    args = ["--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), *ARGS, "--batch-size", "32"]
    status = main([*args, "--timeout", "1"])
    out, err = capsys.readouterr()
    assert status == 1 and "could not start" in err and "every rank started" in err, err
    assert "Traceback" not in err and out == ""


def test_a_peer_that_dies_ends_the_survivor_with_status_1_and_one_line(tmp_path):
    """Two ranks started by hand; rank 1 killed after the first checkpoint: rank 0 printed a traceback."""
    source = write_csvs(tmp_path, files=1, rows=6400)[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    ck = tmp_path / "ck"
    procs = []
    for rank in (0, 1):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                   GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "stream_am.distributed", "--source", str(source), "--checkpoint-dir", str(ck),
             *ARGS, "--batch-size", "32", "--checkpoint-every", "2", "--timeout", "30"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        deadline = time.monotonic() + 60
        while not (ck / "checkpoint.json").exists() and time.monotonic() < deadline and procs[0].poll() is None:
            time.sleep(0.02)
        procs[1].kill()
        _, err = procs[0].communicate(timeout=60)
    finally:
        for proc in procs:
            proc.kill()
            proc.communicate()
    assert procs[0].returncode == 1, err[-2000:]
    assert "error: DataParallelAM rank 0" in err and "Traceback" not in err, err[-2000:]


def test_a_regression_whose_memories_cannot_fit_this_machine_is_refused_naming_hidden(tmp_path, run, monkeypatch):
    """helper-62's review: the memory check counted classifications only (a regression has one sum per layer)."""
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    pages = {"SC_PHYS_PAGES": 2**20, "SC_PAGE_SIZE": 4096}  # a machine of 4 GiB: half is 2
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    args = ["--source", str(source), "--checkpoint-dir", str(tmp_path / "ck"), "--target", "label",
            "--task", "regression", "--report-every", "0"]
    status, _, err = run(*args, "--hidden", ",".join(["4096"] * 8))  # (8 sums of 4097 x 4098: about 3 GiB)
    assert status == 2 and "--hidden 4096," in err and "half this machine's 4 GiB" in err, err
    assert "--n-classes" not in err and not (tmp_path / "ck").exists()
    status, out, err = run(*args, "--hidden", "64", "--max-steps", "1")
    assert status == 0 and json.loads(out.splitlines()[-1])["step"] == 1, err


def test_a_checkpoint_dir_another_job_writes_is_refused_and_left_as_it_was(tmp_path, run):
    """helper-62's review: two jobs on one --checkpoint-dir overwrote each other's checkpoints (one temporary name)."""
    from stream_am.locks import lock_directory

    (source,) = write_csvs(tmp_path, files=1, rows=64)
    ck = tmp_path / "ck"
    args = ["--source", str(source), "--checkpoint-dir", str(ck), *ARGS, "--batch-size", "32"]
    assert run(*args, "--max-steps", "1")[0] == 0
    before = _files(ck)
    held = lock_directory(ck)  # (another job's: flock locks an open file, so one process can play both)
    try:
        status, out, err = run(*args)
    finally:
        held.close()
    assert status == 2 and "--checkpoint-dir" in err and "in use by another job" in err and out == "", err
    assert _files(ck) == before
    status, out, _ = run(*args)
    assert status == 0 and json.loads(out.splitlines()[-1])["resumed_from"] == 1
