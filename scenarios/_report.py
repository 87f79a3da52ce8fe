"""Write a scenario's outputs: results.json, results.md and PNG plots (matplotlib, Agg backend).

The optional HTML report is :mod:`stream_am.scenarios._html`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stream_am.scenarios._atomic import temp_path, write_atomic, write_figure
from stream_am.scenarios._html import STYLES

__all__ = ["OUTPUTS", "clear_outputs", "temp_path", "write_results", "plot_curves", "plot_matrices"]

#: every file a scenario run writes in its output directory, by name (``report.html`` with ``--html`` only)
OUTPUTS = ("results.json", "results.md", "accuracy.png", "accuracy_matrix.png", "report.html")


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def clear_outputs(out: Path) -> None:
    """Remove from ``out`` the files an earlier run wrote there (:data:`OUTPUTS`), and no other file.

    A directory or a missing file of those names is left as it is.
    """
    for name in OUTPUTS:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)


def write_results(
    out: Path, scenario: str, config: dict[str, Any], learners: dict[str, dict[str, Any]], description: str = ""
) -> dict[str, Any]:
    """Write ``results.json`` and ``results.md`` (each atomically); return the JSON document.

    Scalar metrics become table columns; list-valued ones (accuracy matrices, per-drift lists) go to JSON
    only.
    """
    out.mkdir(parents=True, exist_ok=True)
    doc = _clean({"scenario": scenario, "config": config, "learners": learners})
    write_atomic(out / "results.json", json.dumps(doc, indent=2) + "\n")
    columns: list[str] = []
    for metrics in doc["learners"].values():
        for k, v in metrics.items():
            if not isinstance(v, (list, dict)) and k not in columns:
                columns.append(k)
    lines = [f"# {scenario}", ""]
    if description:
        lines += [description, ""]
    lines += ["Config: " + ", ".join(f"`{k}={v}`" for k, v in doc["config"].items()), ""]
    lines += ["| learner | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in doc["learners"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(metrics.get(c)) for c in columns) + " |")
    write_atomic(out / "results.md", "\n".join(lines) + "\n")
    return doc


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(
    path: Path,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    marks: Sequence[int] = (),
    title: str = "",
    mark_label: str = "drift",
    window: int | None = None,
) -> None:
    """Rolling prequential accuracy of each learner against samples seen, with ``marks`` as dashed lines.

    Each learner has its own colour, line style and marker (placed at staggered samples), so curves that
    coincide stay distinguishable; the legend sits outside the axes; the y label gives the window size.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, ((name, (x, y)), (colour, _, style)) in enumerate(zip(curves.items(), STYLES * 4, strict=False)):
        every = max(1, len(x) // 8)
        ax.plot(x, y, label=name, lw=1.4, color=colour, ls=style, marker=_MARKERS[i % len(_MARKERS)], ms=4,
                markevery=(i * every // max(1, len(curves)) % every, every))
    for i, m in enumerate(marks):
        ax.axvline(m, color="grey", ls=(0, (4, 3)), lw=0.9, label=mark_label if i == 0 else None)
    ax.set_xlabel("samples seen")
    ax.set_ylabel("rolling accuracy" + (f"\n(window: {window:,} samples)" if window else ""))
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    write_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_matrices(path: Path, matrices: Mapping[str, np.ndarray], title: str = "") -> None:
    """One heatmap per learner of its accuracy matrix ``R[i, j]`` (row: after task i; column: task j)."""
    plt = _pyplot()
    n = len(matrices)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (name, R) in zip(axes.flat, matrices.items(), strict=False):
        R = np.asarray(R)
        ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(R):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="w" if v < 0.6 else "k")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("task evaluated", fontsize=7)
        ax.set_ylabel("after task", fontsize=7)
        ax.set_xticks(range(R.shape[1]))
        ax.set_yticks(range(R.shape[0]))
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    write_figure(fig, path, dpi=110)
    plt.close(fig)
