"""Small inline-SVG chart builders (bars, grouped bars, lines) for the self-contained report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

_PALETTE = ("#3b6ea5", "#d9822b", "#4f9a5a", "#b8463d", "#7d5ba6", "#8c8c8c")
_FONT = 'font-family="sans-serif" font-size="11"'


def bar_chart(
    items: Sequence[tuple[str, float]], title: str, *, width: int = 560, height: int = 220
) -> str:
    """Vertical bar chart.

    Args:
        items: ``(label, value)`` bars in display order.
        title: Accessible title (``<title>`` and ``aria-label``).
        width: SVG width in px.
        height: SVG height in px.

    Returns:
        An ``<svg>`` element as text; a short note when ``items`` is empty.
    """
    return grouped_bar_chart(
        [label for label, _ in items],
        {"": [value for _, value in items]},
        title,
        width=width,
        height=height,
    )


def grouped_bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    *,
    width: int = 560,
    height: int = 240,
) -> str:
    """Vertical bar chart with one bar per series inside each category.

    Args:
        categories: Category labels along the x axis.
        series: ``{series name: values aligned with categories}``; an empty name hides the
            legend.
        title: Accessible title.
        width: SVG width in px.
        height: SVG height in px.

    Returns:
        An ``<svg>`` element as text; a short note when there is nothing to draw.
    """
    if not categories or not series:
        return _empty(title)
    left, right, top, bottom = 48, 12, 24, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((max(values, default=0) for values in series.values()), default=0) or 1
    group_w = plot_w / len(categories)
    bar_w = max(group_w * 0.8 / len(series), 1.0)
    parts = [_open(title, width, height), _axes(left, top, plot_w, plot_h, peak)]
    for s_index, (name, values) in enumerate(series.items()):
        color = _PALETTE[s_index % len(_PALETTE)]
        for c_index, value in enumerate(values):
            bar_h = plot_h * (value / peak)
            x = left + c_index * group_w + group_w * 0.1 + s_index * bar_w
            y = top + plot_h - bar_h
            label = f"{categories[c_index]}{' · ' + name if name else ''}: {_fmt(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" '
                f'fill="{color}"><title>{escape(label)}</title></rect>'
            )
    step = max(1, len(categories) // 12)
    for c_index, category in enumerate(categories):
        if c_index % step:
            continue
        x = left + (c_index + 0.5) * group_w
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle" {_FONT}>'
            f"{escape(_short(category))}</text>"
        )
    if any(series):
        parts.append(_legend(list(series), left, height - 12))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    *,
    width: int = 560,
    height: int = 220,
) -> str:
    """Line chart over runs; None values leave gaps.

    Args:
        labels: x-axis labels (e.g. run dates), oldest first.
        series: ``{series name: values aligned with labels}``.
        title: Accessible title.
        width: SVG width in px.
        height: SVG height in px.

    Returns:
        An ``<svg>`` element as text; a short note when there is nothing to draw.
    """
    values = [v for vs in series.values() for v in vs if v is not None]
    if not labels or not values:
        return _empty(title)
    left, right, top, bottom = 48, 12, 24, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(values) or 1
    step_x = plot_w / max(len(labels) - 1, 1)
    parts = [_open(title, width, height), _axes(left, top, plot_w, plot_h, peak)]
    for s_index, (name, points) in enumerate(series.items()):
        color = _PALETTE[s_index % len(_PALETTE)]
        coords = [
            (left + i * step_x, top + plot_h - plot_h * (v / peak), v)
            for i, v in enumerate(points)
            if v is not None
        ]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        shown = [(i, v) for i, v in enumerate(points) if v is not None]
        for (x, y, v), (i, _) in zip(coords, shown, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(f'{name} {labels[i]}: {_fmt(v)}')}</title></circle>"
            )
    for i in tick_indices([left + i * step_x for i in range(len(labels))], labels):
        anchor = "end" if i == len(labels) - 1 and i > 0 else "middle"
        parts.append(
            f'<text x="{left + i * step_x:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="{anchor}" {_FONT}>{escape(_short(labels[i]))}</text>'
        )
    parts.append(_legend(list(series), left, height - 12))
    parts.append("</svg>")
    return "".join(parts)


_CHAR_PX = 6.2  # width of one label character at the chart font size (10 px sans-serif)


def tick_indices(xs: Sequence[float], labels: Sequence[str]) -> list[int]:
    """The labels to draw so that no two overlap: the last one always, then left to right.

    A label is centred on its x (the last one ends there); one is skipped when it would touch
    a label already placed (4 px of air). Several runs on one day get distinct labels from
    the caller (``MM-DD HH:MM``), so nothing is drawn on top of each other.
    """
    if not labels:
        return []

    def span(i: int) -> tuple[float, float]:
        w = len(_short(labels[i])) * _CHAR_PX
        if i == len(labels) - 1 and i > 0:
            return xs[i] - w, xs[i]
        return xs[i] - w / 2, xs[i] + w / 2

    last = len(labels) - 1
    chosen = [last]
    for i in range(last):
        lo, hi = span(i)
        if all(hi + 4 <= span(j)[0] or lo >= span(j)[1] + 4 for j in chosen):
            chosen.append(i)
    return sorted(chosen)


def _open(title: str, width: int, height: int) -> str:
    safe = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{safe}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{safe}</title>"
    )


def _axes(left: int, top: int, plot_w: int, plot_h: int, peak: float) -> str:
    base = top + plot_h
    return (
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" stroke="#444"/>'
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#444"/>'
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" {_FONT}>{_fmt(peak)}</text>'
        f'<text x="{left - 4}" y="{base}" text-anchor="end" {_FONT}>0</text>'
    )


def _legend(names: Sequence[str], x: int, y: int) -> str:
    parts = []
    for index, name in enumerate(n for n in names if n):
        color = _PALETTE[index % len(_PALETTE)]
        offset = x + index * 120
        parts.append(
            f'<rect x="{offset}" y="{y - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{offset + 14}" y="{y}" {_FONT}>{escape(name)}</text>'
        )
    return "".join(parts)


def _empty(title: str) -> str:
    return f'<p class="empty">{escape(title)}: no data for this run.</p>'


def _short(label: str, limit: int = 14) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
