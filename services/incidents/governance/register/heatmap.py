"""The 5x5 heat map as SVG: a small template, every text escaped.

Rows are likelihood (5 at the top), columns impact (1 at the left); each cell
is coloured by its level in the matrix and shows how many open risks sit in
it, with their titles as the cell's tooltip (``<title>``). Titles are staff
input, so everything written into the document goes through
:func:`xml.sax.saxutils.escape` / :func:`quoteattr`.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from services.incidents.governance.register.matrix import IMPACT_LABELS, LIKELIHOOD_LABELS, Level
from services.incidents.governance.register.schemas import HeatMap

CELL = 90
LEFT = 130
TOP = 50
COLOURS = {Level.low: "#8fd694", Level.medium: "#ffd166", Level.high: "#ef476f"}
MAX_TITLES = 10


def render_svg(heat: HeatMap, *, caption: str = "Risk register heat map") -> str:
    width, height = LEFT + 5 * CELL + 20, TOP + 5 * CELL + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif" font-size="12">',
        f"<title>{escape(caption)}</title>",
        f'<text x="{LEFT}" y="25" font-size="16" font-weight="bold">{escape(caption)}</text>',
    ]
    for cell in heat.cells:
        x = LEFT + (cell.impact - 1) * CELL
        y = TOP + (5 - cell.likelihood) * CELL
        shown = cell.risks[:MAX_TITLES]
        more = len(cell.risks) - len(shown)
        tooltip = "\n".join(shown) + (f"\n(+{more} more)" if more > 0 else "")
        parts.append(
            f'<g class="cell" data-likelihood="{cell.likelihood}" data-impact="{cell.impact}" '
            f'data-level={quoteattr(cell.level.value)} data-count="{cell.count}">'
            f"<title>{escape(f'likelihood {cell.likelihood} x impact {cell.impact}: {cell.level.value}')}"
            f"{escape(chr(10) + tooltip) if tooltip else ''}</title>"
            f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{COLOURS[cell.level]}" stroke="#ffffff"/>'
            f'<text x="{x + CELL // 2}" y="{y + CELL // 2 + 6}" text-anchor="middle" font-size="20">{cell.count}</text>'
            "</g>"
        )
    for index, label in enumerate(LIKELIHOOD_LABELS):
        y = TOP + (4 - index) * CELL + CELL // 2 + 4
        parts.append(f'<text x="{LEFT - 8}" y="{y}" text-anchor="end">{index + 1} {escape(label)}</text>')
    for index, label in enumerate(IMPACT_LABELS):
        x = LEFT + index * CELL + CELL // 2
        parts.append(f'<text x="{x}" y="{TOP + 5 * CELL + 18}" text-anchor="middle">{index + 1} {escape(label)}</text>')
    parts.append(f'<text x="{LEFT + 5 * CELL // 2}" y="{TOP + 5 * CELL + 40}" text-anchor="middle">impact</text>')
    parts.append(
        f'<text x="20" y="{TOP + 5 * CELL // 2}" text-anchor="middle" '
        f'transform="rotate(-90 20 {TOP + 5 * CELL // 2})">likelihood</text>'
    )
    parts.append(f'<text x="{LEFT}" y="{TOP + 5 * CELL + 60}">overdue reviews: {heat.overdue_reviews}</text>')
    parts.append("</svg>")
    return "".join(parts)
