"""Small inline-SVG charts for the HTML report: no scripts, fonts or files, works offline.

Each chart is one `<svg role="img">` element with a `<title>` and `<desc>` (read by screen
readers), a visible title, labelled axes and a legend.  Series are told apart by colour (a
colour-blind-safe palette) and by dash pattern or marker, never by colour alone.  Values are
plotted as floats (drawing only; every figure shown as text stays exact) and all text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 4", "1 2")
MARKERS = ("circle", "square", "triangle", "diamond", "circle", "square")
FONT = 12
CHAR_WIDTH = 7.0  # rough advance of one character at FONT px, for layout only
MAX_POINTS = 600

Formatter = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """A named line; a None value breaks it (no data there)."""

    name: str
    points: tuple[tuple[float, float | None], ...]


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 times a power of ten."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def tick_label(value: float, step: float) -> str:
    """Readable tick text: thousands separators, M/k for large round values."""
    size = abs(value)
    if size >= 1e6 and step >= 1e5:
        return f"{value / 1e6:,.{_places(step / 1e6)}f}M"
    if size >= 1e4 and step >= 1e3:
        return f"{value / 1e3:,.{_places(step / 1e3)}f}k"
    return f"{value:,.{_places(step)}f}"


def _places(step: float) -> int:
    """Decimal places needed to tell ticks `step` apart."""
    for places in range(7):
        if abs(round(step, places) - step) <= abs(step) * 1e-9:
            return places
    return 6


def downsample(
    points: Sequence[tuple[float, float]], limit: int = MAX_POINTS
) -> list[tuple[float, float]]:
    """At most about `limit` points, keeping each bucket's lowest and highest (minima survive)."""
    if len(points) <= limit:
        return list(points)
    size = math.ceil(len(points) / (limit / 2))
    kept: list[tuple[float, float]] = []
    for start in range(0, len(points), size):
        bucket = points[start : start + size]
        low = min(bucket, key=lambda p: p[1])
        high = max(bucket, key=lambda p: p[1])
        kept += sorted({low, high}, key=lambda p: p[0])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _legend_layout(names: Sequence[str], left: float, width: float) -> list[tuple[float, float]]:
    """Top-left corner of each legend item, wrapping to new rows (relative y offsets)."""
    x, y, places = left, 0.0, []
    for name in names:
        item = 34 + CHAR_WIDTH * len(name) + 18
        if x > left and x + item > left + width:
            x, y = left, y + FONT + 10
        places.append((x, y))
        x += item
    return places


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    r = 3.5
    if kind == "square":
        return (
            f'<rect x="{_num(x - r)}" y="{_num(y - r)}" width="{_num(2 * r)}" '
            f'height="{_num(2 * r)}" fill="{colour}"/>'
        )
    if kind == "triangle":
        return (
            f'<polygon points="{_num(x)},{_num(y - r - 1)} {_num(x - r - 0.5)},{_num(y + r)} '
            f'{_num(x + r + 0.5)},{_num(y + r)}" fill="{colour}"/>'
        )
    if kind == "diamond":
        return (
            f'<polygon points="{_num(x)},{_num(y - r - 1)} {_num(x + r + 1)},{_num(y)} '
            f'{_num(x)},{_num(y + r + 1)} {_num(x - r - 1)},{_num(y)}" fill="{colour}"/>'
        )
    return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}" fill="{colour}"/>'


class _Frame:
    """Plot area, scales and the shared parts of every chart (title, axes, legend)."""

    def __init__(
        self,
        chart_id: str,
        title: str,
        description: str,
        *,
        width: int,
        height: int,
        legend: Sequence[str],
    ) -> None:
        self.id, self.title, self.description = chart_id, title, description
        self.width, self.left, self.right, self.top = width, 84, 24, 44
        self.legend = _legend_layout(legend, self.left, width - self.left - self.right)
        legend_height = (self.legend[-1][1] + FONT + 10) if self.legend else 0
        self.plot_bottom = height - 64
        self.height = int(height + legend_height)
        self.parts: list[str] = []

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    def y_scale(self, ticks: Sequence[float]) -> Callable[[float], float]:
        low, high = ticks[0], ticks[-1]
        span = (high - low) or 1.0
        return lambda v: self.plot_bottom - (v - low) / span * (self.plot_bottom - self.top)

    def y_axis(
        self, ticks: Sequence[float], label: str, fmt: Formatter | None
    ) -> Callable[[float], float]:
        y = self.y_scale(ticks)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        self.parts.append('<g class="grid" stroke="#ddd" stroke-width="1">')
        right = _num(self.width - self.right)
        self.parts += [
            f'<line x1="{self.left}" x2="{right}" y1="{_num(y(t))}" y2="{_num(y(t))}"/>'
            for t in ticks
        ]
        self.parts.append('</g><g class="y-ticks" text-anchor="end" font-size="11">')
        self.parts += [
            f'<text x="{self.left - 6}" y="{_num(y(t) + 4)}">'
            f"{escape(fmt(t) if fmt else tick_label(t, step))}</text>"
            for t in ticks
        ]
        middle = (self.top + self.plot_bottom) / 2
        self.parts.append(
            f'</g><text class="axis-label" font-size="{FONT}" text-anchor="middle" '
            f'transform="translate(16 {_num(middle)}) rotate(-90)">'
            f"{escape(label)}</text>"
        )
        return y

    def x_axis(self, ticks: Sequence[tuple[float, str]], label: str) -> None:
        bottom = self.plot_bottom
        self.parts.append(
            f'<line class="axis" x1="{self.left}" '
            f'x2="{_num(self.width - self.right)}" y1="{_num(bottom)}" '
            f'y2="{_num(bottom)}" stroke="#555"/>'
        )
        self.parts.append('<g class="x-ticks" text-anchor="middle" font-size="11">')
        for x, text in ticks:
            self.parts.append(
                f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(bottom)}" '
                f'y2="{_num(bottom + 4)}" stroke="#555"/>'
            )
            self.parts.append(f'<text x="{_num(x)}" y="{_num(bottom + 17)}">{escape(text)}</text>')
        self.parts.append(
            f'</g><text class="axis-label" font-size="{FONT}" text-anchor="middle" '
            f'x="{_num(self.left + self.plot_width / 2)}" y="{_num(bottom + 38)}">'
            f"{escape(label)}</text>"
        )

    def legend_items(
        self, names: Sequence[str], swatch: Callable[[int, float, float], str]
    ) -> None:
        base = self.plot_bottom + 58
        self.parts.append(f'<g class="legend" font-size="{FONT}">')
        for index, (name, (x, y)) in enumerate(zip(names, self.legend, strict=True)):
            self.parts.append(swatch(index, x, base + y))
            self.parts.append(
                f'<text x="{_num(x + 34)}" y="{_num(base + y + 4)}">{escape(name)}</text>'
            )
        self.parts.append("</g>")

    def svg(self) -> str:
        head = (
            f'<svg id="{escape(self.id)}" class="chart" '
            f'viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" role="img" '
            f'aria-labelledby="{escape(self.id)}-title {escape(self.id)}-desc" '
            f'font-family="system-ui, sans-serif">'
            f'<title id="{escape(self.id)}-title">{escape(self.title)}</title>'
            f'<desc id="{escape(self.id)}-desc">{escape(self.description)}</desc>'
            f'<text class="chart-title" x="{self.left}" y="24" font-size="15" '
            f'font-weight="bold">{escape(self.title)}</text>'
        )
        return head + "".join(self.parts) + "</svg>"


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    x_format: Formatter | None = None,
    log_x: bool = False,
    x_ticks: Sequence[float] | None = None,
    markers: bool = False,
    width: int = 760,
    height: int = 380,
) -> str:
    """Lines over a shared x axis (optionally logarithmic), one per series."""
    frame = _Frame(
        chart_id, title, description, width=width, height=height, legend=[s.name for s in series]
    )
    xs = [x for s in series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in series for _, y in s.points if y is not None] or [0.0, 1.0]
    y_ticks = nice_ticks(min(ys), max(ys))
    y = frame.y_axis(y_ticks, y_label, None)
    if log_x:
        xs = [x for x in xs if x > 0] or [1.0, 10.0]

    def fx(v: float) -> float:
        return math.log10(v) if log_x else v

    low, high = fx(min(xs)), fx(max(xs))
    span = (high - low) or 1.0

    def x(v: float) -> float:
        return frame.left + (fx(v) - low) / span * frame.plot_width

    if x_ticks is None:
        raw = nice_ticks(min(xs), max(xs), 6)
        chosen = [t for t in raw if min(xs) <= t <= max(xs)] or [min(xs), max(xs)]
    else:
        chosen = [t for t in x_ticks if min(xs) <= t <= max(xs)]
    step = chosen[1] - chosen[0] if len(chosen) > 1 else 1.0
    frame.x_axis(
        [(x(t), x_format(t) if x_format else tick_label(t, step)) for t in chosen], x_label
    )
    frame.parts.append('<g class="series" fill="none" stroke-width="2" stroke-linejoin="round">')
    for index, item in enumerate(series):
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        segments: list[list[tuple[float, float]]] = [[]]
        for px, py in item.points:
            if py is None or (log_x and px <= 0):
                segments.append([])
            else:
                segments[-1].append((px, py))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        frame.parts.append(f'<g class="line"><title>{escape(item.name)}</title>')
        for segment in filter(None, segments):
            path = " ".join(
                f"{'M' if i == 0 else 'L'}{_num(x(px))},{_num(y(py))}"
                for i, (px, py) in enumerate(downsample(segment))
            )
            frame.parts.append(f'<path d="{path}" stroke="{colour}"{dash_attr}/>')
            if markers:
                frame.parts += [
                    _marker(MARKERS[index % len(MARKERS)], x(px), y(py), colour)
                    for px, py in segment
                ]
        frame.parts.append("</g>")
    frame.parts.append("</g>")

    def swatch(index: int, sx: float, sy: float) -> str:
        colour, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        mark = _marker(MARKERS[index % len(MARKERS)], sx + 14, sy, colour) if markers else ""
        return (
            f'<line x1="{_num(sx)}" x2="{_num(sx + 28)}" y1="{_num(sy)}" y2="{_num(sy)}" '
            f'stroke="{colour}" stroke-width="2"{dash_attr}/>{mark}'
        )

    frame.legend_items([s.name for s in series], swatch)
    return frame.svg()


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    groups: Sequence[tuple[str, Sequence[tuple[float, str]]]],
    y_label: str,
    x_label: str = "",
    width: int = 760,
    height: int = 400,
) -> str:
    """Grouped bars: one group per category, one bar per series (value, exact label)."""
    frame = _Frame(
        chart_id,
        title,
        description,
        width=width,
        height=height,
        legend=[name for name, _ in groups],
    )
    values = [v for _, bars in groups for v, _ in bars] + [0.0]
    ticks = nice_ticks(min(values), max(values))
    y = frame.y_axis(ticks, y_label, None)
    slot = frame.plot_width / max(len(categories), 1)
    bar = min(28.0, slot * 0.8 / max(len(groups), 1))
    labels = [(frame.left + slot * (i + 0.5), c) for i, c in enumerate(categories)]
    frame.x_axis([], x_label)
    frame.parts.append('<g class="x-ticks" text-anchor="middle" font-size="11">')
    for cx, text in labels:
        words = text.split()
        half = math.ceil(len(words) / 2) if len(text) * CHAR_WIDTH > slot else len(words)
        for line, chunk in enumerate((" ".join(words[:half]), " ".join(words[half:]))):
            if chunk:
                ty = frame.plot_bottom + 15 + 12 * line
                frame.parts.append(f'<text x="{_num(cx)}" y="{_num(ty)}">{escape(chunk)}</text>')
    frame.parts.append("</g>")
    zero = y(0.0)
    frame.parts.append('<g class="bars">')
    for index, (name, bars) in enumerate(groups):
        colour = PALETTE[index % len(PALETTE)]
        for position, (value, shown) in enumerate(bars):
            bx = frame.left + slot * position + (slot - bar * len(groups)) / 2 + bar * index
            top, bottom = sorted((y(value), zero))
            frame.parts.append(
                f'<rect x="{_num(bx)}" y="{_num(top)}" width="{_num(bar - 2)}" '
                f'height="{_num(max(bottom - top, 0.5))}" fill="{colour}">'
                f"<title>{escape(f'{name}, {categories[position]}: {shown}')}</title></rect>"
            )
    frame.parts.append(
        f'</g><line class="zero" x1="{frame.left}" x2="{_num(width - frame.right)}" '
        f'y1="{_num(zero)}" y2="{_num(zero)}" stroke="#333"/>'
    )

    def swatch(index: int, sx: float, sy: float) -> str:
        return (
            f'<rect x="{_num(sx + 6)}" y="{_num(sy - 7)}" width="16" height="14" '
            f'fill="{PALETTE[index % len(PALETTE)]}"/>'
        )

    frame.legend_items([name for name, _ in groups], swatch)
    return frame.svg()
