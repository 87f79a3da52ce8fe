"""A refused cell of the distributed job's sources is shown as the file holds it, not rounded to another value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from stream_am.distributed.sources import checked_rows


@pytest.mark.parametrize(("column", "cell", "shown"), [
    ("y", 1.9999999, "label 1.9999999 is not a class"),  # (shown as "label 2", a class, with :g)
    ("y", 1.0000001, "label 1.0000001 is not a class"),
    ("a", 1000000001.0, "the value is 1000000001.0, beyond"),  # (shown as "1e+09, beyond +-1e+09")
])
def test_a_refused_cell_is_shown_as_it_is(column, cell, shown):
    frame = pd.DataFrame({"a": [0.5, 0.5], "y": [0.0, 1.0]})
    frame.loc[1, column] = cell
    with pytest.raises(ValueError, match=f"row 2, column '{column}'") as err:
        list(checked_rows(frame, Path("s.csv"), "y", 2))
    assert shown in str(err.value)
