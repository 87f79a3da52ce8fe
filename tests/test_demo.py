"""`stream-am demo` runs offline and prints a labelled table: one row per learner, its final accuracy."""

import re

import pytest

from stream_am.cli import main


def test_demo_prints_a_labelled_table_of_prequential_accuracy(capsys):
    assert main(["demo", "--every", "900"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("learner"))
    assert lines[start].split() == ["learner", "900", "final", "samples/s"]
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1:] if line.strip()]
    rows = {c[0]: float(c[2]) for c in cells}
    assert set(rows) == {"AM-mem, hidden (64, 64)", "AM-Adam, hidden (64, 64)", "river SoftmaxRegression"}, out
    assert all(0.5 < f <= 1.0 for f in rows.values()), out


def test_demo_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "SoftmaxRegression" in out
