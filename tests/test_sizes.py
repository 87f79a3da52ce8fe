"""Size limits of the installed code (house style: one concept per file): no file over 300 lines, no function
over 60. ``api/`` and ``scenarios/`` install as ``stream_am.server`` and ``stream_am.scenarios``, so they are
held to the library's limits."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stream_am", "api", "scenarios")
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def _files(roots: list[Path]) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py"))


def _long_files(roots: list[Path], limit: int) -> dict[str, int]:
    lines = {str(p): len(p.read_text().splitlines()) for p in _files(roots)}
    return {name: n for name, n in lines.items() if n > limit}


def _long_functions(roots: list[Path], limit: int) -> dict[str, int]:
    found = {}
    for path in _files(roots):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    found[f"{path}:{node.lineno} {node.name}"] = n
    return found


def test_no_file_is_over_300_lines():
    roots = [ROOT / p for p in PACKAGES]
    assert all(r.is_dir() for r in roots) and len(_files(roots)) > 20
    assert _long_files(roots, MAX_FILE_LINES) == {}


def test_no_function_is_over_60_lines():
    assert _long_functions([ROOT / p for p in PACKAGES], MAX_FUNCTION_LINES) == {}


def test_the_checks_find_a_long_file_and_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    (tmp_path / "long.py").write_text(f"def f():\n{body}\n" + "\n" * 239)  # 61-line function, 300 lines
    assert _long_files([tmp_path], 300) == {}
    assert _long_files([tmp_path], 299) == {str(tmp_path / "long.py"): 300}
    assert _long_functions([tmp_path], 61) == {}
    assert _long_functions([tmp_path], 60) == {f"{tmp_path / 'long.py'}:1 f": 61}
