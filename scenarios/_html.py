"""A scenario's self-contained HTML report: one file, inline CSS and SVG, no script, no external request.

It holds what ``results.md`` and the PNG plots show: the configuration, the metrics table, the rolling
accuracy curves (each learner with its own colour *and* dash pattern, so curves that coincide stay
distinguishable; the legend beside the plot, never over the data; the window size on the axis; drift or
task marks as dashed lines) and the accuracy matrices of continual scenarios as coloured tables.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stream_am.scenarios._atomic import write_atomic

__all__ = ["STYLES", "write_html"]

#: (colour, SVG dash pattern, matplotlib line style) per learner, in order; colours are matplotlib's tab10
STYLES = [
    (c, d, m)
    for (d, m), c in zip(
        [("", "-"), ("7 4", "--"), ("2 3", ":"), ("9 3 2 3", "-.")] * 3,
        ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf", "#393b79", "#637939"],
        strict=True,
    )
]
_W, _H, _LEFT, _TOP, _BOTTOM = 720, 340, 58, 16, 44

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;margin:2rem auto;max-width:70rem;
padding:0 1rem}h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse;font-size:.85rem}
td,th{border:1px solid #dde1e7;padding:.25rem .5rem;text-align:right}th:first-child,td:first-child{text-align:left}
.figure{display:flex;gap:1rem;align-items:flex-start;flex-wrap:wrap}.legend{list-style:none;padding:0;margin:0;
font-size:.85rem}.legend li{display:flex;align-items:center;gap:.4rem;margin:.2rem 0}.config{color:#5d6778;
font-size:.85rem}.matrices{display:flex;flex-wrap:wrap;gap:1.5rem}.matrices td{width:2.6rem;text-align:center}
""".replace("\n", "")


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    if isinstance(value, list):
        return ""
    return _e(value)


def _table(learners: Mapping[str, Mapping[str, Any]]) -> str:
    columns: list[str] = []
    for metrics in learners.values():
        columns += [k for k, v in metrics.items() if not isinstance(v, (list, dict)) and k not in columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in ["learner", *columns])
    rows = "".join(
        f"<tr><td>{_e(name)}</td>" + "".join(f"<td>{_fmt(m.get(c))}</td>" for c in columns) + "</tr>"
        for name, m in learners.items()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _chart(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], marks: Sequence[int], mark_label: str, window: int | None
) -> str:
    """An SVG line chart of the curves (y in [0, 1]) and an HTML legend beside it."""
    xmax = max([float(np.max(x)) for x, _ in curves.values() if len(x)] + [float(m) for m in marks] + [1.0])
    pw, ph = _W - _LEFT - 12, _H - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + pw * x / xmax

    def py(y: float) -> float:
        return _TOP + ph * (1.0 - y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" role="img" font-size="11">']
    for k in range(6):
        level = k / 5
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + pw}" y1="{py(level):.1f}" y2="{py(level):.1f}" '
                     'stroke="#e5e7eb"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{py(level) + 4:.1f}" text-anchor="end">{level:.1f}</text>')
        at = xmax * k / 5
        parts.append(f'<text x="{px(at):.1f}" y="{_TOP + ph + 16}" text-anchor="middle">{at:,.0f}</text>')
    parts.append(f'<text x="{_LEFT + pw / 2}" y="{_H - 6}" text-anchor="middle">samples seen</text>')
    label = "rolling accuracy" + (f" (window: {window:,} samples)" if window else "")
    parts.append(f'<text transform="translate(14 {_TOP + ph / 2}) rotate(-90)" text-anchor="middle">{_e(label)}</text>')
    for m in marks:
        parts.append(f'<line x1="{px(m):.1f}" x2="{px(m):.1f}" y1="{_TOP}" y2="{_TOP + ph}" stroke="#555" '
                     f'stroke-dasharray="4 3"><title>{_e(mark_label)} at {m:,}</title></line>')
    legend = []
    for (name, (x, y)), (colour, dash, _) in zip(curves.items(), STYLES * 4, strict=False):
        pts = " ".join(f"{px(float(a)):.1f},{py(float(b)):.1f}" for a, b in zip(x, y, strict=True))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.6" '
                     f'stroke-dasharray="{dash}"><title>{_e(name)}</title></polyline>')
        sample = (f'<svg width="34" height="10"><line x1="0" x2="34" y1="5" y2="5" stroke="{colour}" '
                  f'stroke-width="2" stroke-dasharray="{dash}"/></svg>')
        legend.append(f"<li>{sample}{_e(name)}</li>")
    if marks:
        legend.append('<li><svg width="34" height="10"><line x1="0" x2="34" y1="5" y2="5" stroke="#555" '
                      f'stroke-dasharray="4 3"/></svg>{_e(mark_label)}</li>')
    parts.append("</svg>")
    return f'<div class="figure">{"".join(parts)}<ul class="legend">{"".join(legend)}</ul></div>'


def _matrices(matrices: Mapping[str, Any]) -> str:
    blocks = []
    for name, R in matrices.items():
        R = np.asarray(R, dtype=float)
        head = "".join(f"<th>{j}</th>" for j in range(R.shape[1]))
        rows = []
        for i, row in enumerate(R):
            cells = "".join(
                f'<td style="background:hsl({120 * v:.0f},60%,{88 - 28 * v:.0f}%)">{v:.2f}</td>' for v in row
            )
            rows.append(f"<tr><th>{i}</th>{cells}</tr>")
        blocks.append(f"<figure><figcaption>{_e(name)}</figcaption><table><thead><tr><th>after \\ task</th>"
                      f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></figure>")
    return f'<div class="matrices">{"".join(blocks)}</div>'


def write_html(
    path: Path,
    doc: Mapping[str, Any],
    description: str,
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    marks: Sequence[int] = (),
    mark_label: str = "drift",
    matrices: Mapping[str, Any] | None = None,
) -> None:
    """Write the report of ``doc`` (the ``results.json`` document) and its curves and matrices to ``path``."""
    config = doc["config"]
    window = config.get("window")
    body = [f"<h1>{_e(doc['scenario'])}</h1>", f"<p>{_e(description)}</p>" if description else ""]
    body.append('<p class="config">' + ", ".join(f"<code>{_e(k)}={_e(json.dumps(v))}</code>"
                                                 for k, v in config.items()) + "</p>")
    body += ["<h2>Results</h2>", _table(doc["learners"])]
    if curves:
        body += ["<h2>Prequential accuracy</h2>", _chart(curves, marks, mark_label, window)]
    if matrices:
        body += ["<h2>Accuracy matrices <small>(row: after task i; column: accuracy on task j)</small></h2>",
                 _matrices(matrices)]
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(doc["scenario"])} · '
            f"stream_am scenario</title><style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
    write_atomic(path, page)
