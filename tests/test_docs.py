"""The documentation runs as written: every Python example of README.md and docs/*.md, and the MkDocs site.

Each ```python block is self-contained: it runs in a fresh namespace, and what it prints is checked: any
accuracy or R² printed is between 0.5 and 1, and where the text right after the block says what it prints
(``It prints `...` ``), the printed figures match the quoted ones to within 0.02, so that the quoted figures
hold on another machine (float kernels differ between CPUs) while a wrong quote fails.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```\n(.*?)(?:\n\n|\Z)", re.S | re.M)
_SCORE = re.compile(r"(?i)(?:accuracy|R²)\W*?(\d+(?:\.\d+)?)(%?)")
_NUMBER = re.compile(r"\d+\.\d+")


def _examples() -> list:
    out = []
    for page in PAGES:
        for i, match in enumerate(_BLOCK.finditer(page.read_text())):
            code, after = match.group(1), match.group(2)
            quoted = re.search(r"prints `([^`]*)`", after)
            out.append(pytest.param(code, quoted.group(1) if quoted else None,
                                    id=f"{page.relative_to(ROOT)}-{i}"))
    return out


def _scores(text: str) -> list[float]:
    return [float(v) / (100 if pct else 1) for v, pct in _SCORE.findall(text)]


@pytest.mark.parametrize(("code", "quoted"), _examples())
def test_python_example_runs_as_written(code: str, quoted: str | None) -> None:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<example>", "exec"), {"__name__": "__example__"})
    out = printed.getvalue()
    assert out.strip(), "an example should print what it shows"
    assert all(0.5 <= s <= 1.0 for s in _scores(out)), out
    if quoted is not None:
        want = [float(v) for v in _NUMBER.findall(quoted)]
        got = [float(v) for v in _NUMBER.findall(out)][: len(want)]
        assert len(got) == len(want), (quoted, out)
        scale = [100.0 if "%" in quoted else 1.0] * len(want)
        assert all(abs(g - w) <= 0.02 * s for g, w, s in zip(got, want, scale, strict=True)), (quoted, out)


def test_the_examples_are_found() -> None:
    assert len(_examples()) >= 6  # README (2), index, method, estimators (2): a lost fence would drop one


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"## Run the tests\n\n```bash\n(.*?)\n```", readme, re.S).group(1)
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert command in ci, (command, ci)
    assert shlex.split(command)[-3:] == ["python", "-m", "pytest"]


def test_docs_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings", reason="the docs extra is not installed (pip install -e '.[docs]')")
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(ROOT / "mkdocs.yml"),
         "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "estimators" / "index.html").read_text()
    assert "learn_one" in api and "epochs" in api  # the API pages come from the docstrings
    for page in site.glob("**/*.html"):  # nothing is loaded from elsewhere when a page is viewed
        assert not re.search(r'<script[^>]+src="https?:', page.read_text()), page
