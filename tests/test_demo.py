"""`stream-am demo` runs offline and prints a final prequential accuracy per learner."""

import re

from stream_am.cli import main


def test_demo_prints_prequential_accuracy(capsys):
    assert main(["demo", "--every", "900"]) == 0
    out = capsys.readouterr().out
    finals = [float(v) for v in re.findall(r"final (\d\.\d+)", out)]
    assert len(finals) == 3 and all(0.5 < f <= 1.0 for f in finals), out
