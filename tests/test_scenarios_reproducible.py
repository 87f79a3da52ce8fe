"""A scenario's results depend on its seed only: not on the process's hash seed, nor on what a run cut short."""

from __future__ import annotations

import random

import pytest
from river import metrics
from stream_am.scenarios import _common, _report
from stream_am.scenarios._common import Outcome, RunConfig, Scenario, execute, prequential


class _Replay:
    """A river-style classifier that predicts a fixed sequence of labels, one per sample asked."""

    def __init__(self, predictions: list[str]) -> None:
        self._predictions = iter(predictions)

    def predict_one(self, x: dict) -> str:
        return next(self._predictions)

    def learn_one(self, x: dict, y: str) -> None:
        pass


def test_macro_f1_does_not_depend_on_the_order_of_str_classes(monkeypatch, tmp_path):
    # river sums the per-class F1 scores in the order of a set of the labels, which for str labels changes with
    # the process's hash seed (PYTHONHASHSEED): two runs of one seed differed in macro_f1's last digit
    rng = random.Random(1)
    pairs = [(rng.choice("abcdefg"), rng.choice("abcdefg")) for _ in range(40)]
    stream = [({"x": 0.0}, y) for y, _ in pairs]
    cfg = RunConfig(out=tmp_path, progress=False, batch_size=8)
    values = set()
    for order in (sorted, lambda c: sorted(c, reverse=True), lambda c: sorted(c)[3:] + sorted(c)[:3]):
        listed = metrics.ConfusionMatrix.classes.fget
        monkeypatch.setattr(metrics.ConfusionMatrix, "classes",
                            property(lambda self, order=order, listed=listed: order(listed(self))))
        res = prequential(_Replay([p for _, p in pairs]), stream, len(stream), cfg, "replay")
        values.add(res.metrics["macro_f1"])
        monkeypatch.undo()
    assert len(values) == 1, values
    assert values.pop() == pytest.approx(0.1215070643642072)


@pytest.mark.parametrize("stop", [KeyboardInterrupt, RuntimeError])
def test_a_run_cut_short_leaves_the_earlier_runs_results(stop, monkeypatch, tmp_path):
    # the earlier run's files were removed before the scenario ran: a run interrupted (Ctrl-C) or failing after
    # minutes left neither the earlier results nor new ones
    earlier = {name: f"earlier {name}" for name in _report.OUTPUTS}
    for name, text in earlier.items():
        (tmp_path / name).write_text(text)

    def run(cfg: RunConfig) -> Outcome:
        raise stop("cut short")

    monkeypatch.setattr(_common, "warm_up", lambda: None)
    with pytest.raises(stop):
        execute(Scenario("fake", "test", "cut short", run, ("A",)), RunConfig(out=tmp_path, progress=False))
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == earlier


def test_a_finished_run_still_leaves_no_file_of_an_earlier_one(monkeypatch, tmp_path):
    for name in _report.OUTPUTS:
        (tmp_path / name).write_text("earlier")

    def run(cfg: RunConfig) -> Outcome:
        return Outcome(config={}, learners={"A": {"accuracy": 0.5}}, curves={})

    monkeypatch.setattr(_common, "warm_up", lambda: None)
    execute(Scenario("fake", "test", "measures nothing", run, ("A",)), RunConfig(out=tmp_path, progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.md"]
