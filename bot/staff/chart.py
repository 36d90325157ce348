"""Inline SVG bar charts for the dashboard (no script, no CDN). Pure functions."""
from __future__ import annotations

from html import escape
from typing import Sequence


def bar_chart(series: Sequence[tuple[str, int]], title: str, width: int = 640, height: int = 220,
              colour: str = "#2f7d5b") -> str:
    """A vertical bar chart of (label, value) pairs as an <svg> element."""
    n = max(len(series), 1)
    top, bottom, left, right = 28, 40, 36, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for _, v in series] + [1])
    slot = plot_w / n
    bar_w = max(4.0, slot * 0.7)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<title>{escape(title)}</title>',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>',
    ]
    for i, (label, value) in enumerate(series):
        h = plot_h * value / peak
        x = left + i * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        cx = x + bar_w / 2
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                     f'<title>{escape(label)}: {value}</title></rect>')
        if value:
            parts.append(f'<text x="{cx:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">{value}</text>')
        step = max(1, n // 14)
        if i % step == 0:
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" font-size="10" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
