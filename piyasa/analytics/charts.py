"""Analytics charts as PNG bytes, rendered server-side by matplotlib (Agg backend).

Sized for a phone: 1200 × 675 px (16:9, within Telegram's photo limits: ≤ 10 MB,
width + height ≤ 10000, aspect ≤ 20 — REFERENCE.md), fonts of 13–17 pt at 150 dpi, and
every number and date on an axis formatted in the reader's language through
:mod:`piyasa.analytics.localfmt`. Texts (titles, legends, "no data") come in from the caller
already translated, so this module holds no catalog and no chat types; the chat surfaces
(``chatops/commands/analytics``) and the digest call it.

The object-oriented API (:class:`matplotlib.figure.Figure`, no ``pyplot``) keeps no global
state, so charts may render in worker threads (``asyncio.to_thread``) side by side.
matplotlib is imported on first use only: ``piyasa up`` answers ``/healthz`` before heavy
imports, and a process that never draws a chart never loads it.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from piyasa.analytics import localfmt
from piyasa.analytics.queries import BotDetail, SeriesPoint, Share

WIDTH_PX, HEIGHT_PX, DPI = 1200, 675, 150
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2")
SENT, FAILED, OTHER = "#16a34a", "#dc2626", "#94a3b8"
MAX_BARS = 12  # more categories than a phone can label: the rest are summed as "other"
MAX_HIST_BARS = 40  # response-time bars; finer bins are merged with their neighbours


@dataclass(frozen=True)
class Texts:
    """Translated words a chart shows: its title, "no data", and named series."""

    title: str
    empty: str
    names: dict[str, str]

    def name(self, key: str) -> str:
        return self.names.get(key, key)


def _figure(rows: int = 1, cols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.tick_params(labelsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _formatter(fn: Callable[[float], str]) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: fn(value))


def _finish(fig: Any, ax: Any, texts: Texts, *, empty: bool) -> bytes:
    fig.suptitle(texts.title, fontsize=14, fontweight="bold")
    if empty:
        ax.text(
            0.5, 0.5, texts.empty, ha="center", va="center", fontsize=14, transform=ax.transAxes
        )
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return _png(fig)


def _time_axis(ax: Any, points: Sequence[SeriesPoint], lang: str) -> list[float]:
    """x positions 0..n-1 labelled with at most 8 localised dates (hourly points show the
    hour too)."""
    n = len(points)
    hourly = n > 1 and (points[1].at - points[0].at).total_seconds() < 86400
    step = max(1, -(-n // 8))
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks)
    ax.set_xticklabels(
        [localfmt.when(points[i].at, lang, hourly=hourly) for i in ticks],
        rotation=30 if hourly else 0,
        ha="right" if hourly else "center",
    )
    return [float(i) for i in range(n)]


def messages_over_time(points: Sequence[SeriesPoint], lang: str, texts: Texts) -> bytes:
    """Stacked bars per hour/day: sent, failed, and the rest (decided, not yet sent).
    ``texts.names`` keys: "sent", "failed", "other"."""
    fig, axes = _figure()
    ax = axes[0][0]
    empty = not any(p.messages for p in points)
    if not empty:
        xs = _time_axis(ax, points, lang)
        sent = [p.sent for p in points]
        failed = [p.failed for p in points]
        other = [max(p.messages - p.sent - p.failed, 0) for p in points]
        ax.bar(xs, sent, color=SENT, label=texts.name("sent"))
        ax.bar(xs, failed, bottom=sent, color=FAILED, label=texts.name("failed"))
        ax.bar(
            xs,
            other,
            bottom=[s + f for s, f in zip(sent, failed, strict=True)],
            color=OTHER,
            label=texts.name("other"),
        )
        ax.yaxis.set_major_formatter(_formatter(lambda v: localfmt.count(v, lang)))
        ax.legend(fontsize=10, loc="upper left")
    return _finish(fig, ax, texts, empty=empty)


def success_over_time(points: Sequence[SeriesPoint], lang: str, texts: Texts) -> bytes:
    """sent / (sent + failed) per hour/day, 0–100 %; hours with neither are gaps."""
    fig, axes = _figure()
    ax = axes[0][0]
    rates = [p.sent / (p.sent + p.failed) if p.sent + p.failed else None for p in points]
    empty = all(r is None for r in rates)
    if not empty:
        xs = _time_axis(ax, points, lang)
        ys = [float("nan") if r is None else r for r in rates]
        ax.plot(xs, ys, color=COLORS[0], marker="o", markersize=3, linewidth=2)
        ax.set_ylim(min(0.0, *(r for r in rates if r is not None)) - 0.02, 1.02)
        ax.yaxis.set_major_formatter(_formatter(lambda v: localfmt.percent(v, lang)))
    return _finish(fig, ax, texts, empty=empty)


def _top(items: Sequence[tuple[str, float]], other: str) -> list[tuple[str, float]]:
    ranked = sorted(items, key=lambda kv: kv[1], reverse=True)
    if len(ranked) <= MAX_BARS:
        return ranked
    rest = sum(v for _, v in ranked[MAX_BARS - 1 :])
    return [*ranked[: MAX_BARS - 1], (other, rest)]


def _hbars(
    items: Sequence[tuple[str, float]], lang: str, texts: Texts, fmt: Callable[[float], str]
) -> bytes:
    fig, axes = _figure()
    ax = axes[0][0]
    shown = _top([(k, v) for k, v in items if v > 0], texts.name("other"))
    if shown:
        shown.reverse()  # largest on top
        labels = [k[:28] for k, _ in shown]
        values = [v for _, v in shown]
        bars = ax.barh(range(len(values)), values, color=COLORS[0])
        ax.set_yticks(range(len(values)))
        ax.set_yticklabels(labels, fontsize=10)
        ax.bar_label(bars, labels=[fmt(v) for v in values], padding=3, fontsize=9)
        ax.xaxis.set_major_formatter(_formatter(fmt))
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, max(values) * 1.2)
    return _finish(fig, ax, texts, empty=not shown)


def cost_breakdown(items: Sequence[tuple[str, Decimal]], lang: str, texts: Texts) -> bytes:
    """Horizontal bars of cost (USD) per bot or model, largest on top; beyond 12 the
    smallest are summed as ``texts.names["other"]``."""
    return _hbars(
        [(k, float(v)) for k, v in items],
        lang,
        texts,
        lambda v: localfmt.money(Decimal(str(round(v, 6))), lang),
    )


def shares(items: Sequence[Share], lang: str, texts: Texts) -> bytes:
    """Horizontal bars of each topic's (chat's, model's) share of messages, in percent."""
    return _hbars(
        [(s.name, s.share) for s in items], lang, texts, lambda v: localfmt.percent(v, lang)
    )


def latency_histogram(bins: Sequence[tuple[float, float, int]], lang: str, texts: Texts) -> bytes:
    """Response times: one bar per (low ms, high ms, count) bin, labelled by its low end;
    empty bins at both ends are dropped, and beyond 40 bars neighbours are merged."""
    fig, axes = _figure()
    ax = axes[0][0]
    kept = list(bins)
    while kept and not kept[0][2]:
        kept.pop(0)
    while kept and not kept[-1][2]:
        kept.pop()
    if len(kept) > MAX_HIST_BARS:  # 2 % bins are too fine for a phone: merge neighbours
        size = -(-len(kept) // MAX_HIST_BARS)
        kept = [
            (group[0][0], group[-1][1], sum(c for _, _, c in group))
            for group in (kept[i : i + size] for i in range(0, len(kept), size))
        ]
    if kept:
        xs = list(range(len(kept)))
        ax.bar(xs, [c for _, _, c in kept], color=COLORS[0], width=0.9)
        step = max(1, -(-len(kept) // 8))
        ax.set_xticks(xs[::step])
        ax.set_xticklabels(
            [localfmt.duration_ms(low, lang) for low, _, _ in kept[::step]], rotation=30, ha="right"
        )
        ax.yaxis.set_major_formatter(_formatter(lambda v: localfmt.count(v, lang)))
    return _finish(fig, ax, texts, empty=not kept)


def compare(details: Sequence[BotDetail], lang: str, texts: Texts) -> bytes:
    """2–5 bots side by side in four small panels: messages, success rate, p95 response
    and cost. ``texts.names`` keys: "messages", "success", "p95", "cost"."""
    fig, axes = _figure(2, 2)
    names = [d.row.name[:12] for d in details]
    panels: list[tuple[str, list[float], Callable[[float], str]]] = [
        ("messages", [d.row.figures.messages for d in details], lambda v: localfmt.count(v, lang)),
        (
            "success",
            [d.row.figures.success_rate or 0.0 for d in details],
            lambda v: localfmt.percent(v, lang),
        ),
        (
            "p95",
            [d.row.figures.p95_ms or 0.0 for d in details],
            lambda v: localfmt.duration_ms(v, lang),
        ),
        (
            "cost",
            [float(d.row.figures.cost_usd) for d in details],
            lambda v: localfmt.money(Decimal(str(round(v, 6))), lang),
        ),
    ]
    for ax, (key, values, fmt) in zip(axes.flat, panels, strict=True):
        bars = ax.bar(range(len(values)), values, color=COLORS[: len(values)])
        ax.set_title(texts.name(key), fontsize=11)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(names, fontsize=9, rotation=20, ha="right")
        ax.bar_label(bars, labels=[fmt(v) for v in values], fontsize=8, padding=2)
        ax.yaxis.set_major_formatter(_formatter(fmt))
        ax.set_ylim(0, (max(values) or 1) * 1.25)
    fig.suptitle(texts.title, fontsize=14, fontweight="bold")
    fig.tight_layout()
    return _png(fig)
