"""No benchmark log in the installed code's docstrings (issue 11): timings and accuracies go stale, so they live in
``benchmarks/README.md`` and ``docs/``; a docstring says what the code does and points there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stream_am", "api", "scenarios")
# a time (12 us, 0.36 ms), a cost in backprop steps (2.3 backprop steps), a difference in points (1.8 points),
# a percentage cost of a step (4 to 6% of a step)
FIGURE = re.compile(
    r"\b\d+(\.\d+)?\s?(us|µs|ms)\b"
    r"|\b\d+(\.\d+)? backprop steps?\b"
    r"|\b\d+(\.\d+)? points?\b"
    r"|\b\d+(\.\d+)?%( of (a|the|a whole) [\w-]* ?step)"
)


def _docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef))]
    found = []
    for node in nodes:
        doc = ast.get_docstring(node, clean=False)
        if doc:
            found.append((getattr(node, "lineno", 1), doc))
    return found


def _figures(roots: list[Path]) -> list[str]:
    hits = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for line, doc in _docstrings(path):
                prose = "\n".join(row for row in doc.splitlines() if not row.lstrip().startswith((">>>", "...")))
                hits += [f"{path}:{line}: {m.group(0)!r}" for m in FIGURE.finditer(prose)]
    return hits


def test_no_docstring_of_the_installed_code_reports_a_timing_or_a_measured_margin():
    roots = [ROOT / p for p in PACKAGES]
    assert all(r.is_dir() for r in roots)
    assert _figures(roots) == []


def test_the_check_finds_figures_and_ignores_doctests(tmp_path):
    (tmp_path / "m.py").write_text(
        '"""Fast: 0.36 against 1.4 ms."""\n'
        "def f():\n"
        '    """Costs 2.3 backprop steps, 1.8 points under, 4 to 6% of a whole AM-mem step.\n\n'
        "    >>> 12 us\n"
        '    """\n'
    )
    hits = _figures([tmp_path])
    assert [h.split(": ", 1)[1] for h in hits] == ["'1.4 ms'", "'2.3 backprop steps'", "'1.8 points'",
                                                    "'6% of a whole AM-mem step'"]
