"""Numbers, money, rates, durations and dates in the reader's language, by Babel (CLDR).

Every analytics figure a person reads — chat views, chart axes, captions — goes through
here, so Turkish reads "1.247", "$2,47", "%97,3", "30 Kas 14:00" and English "1,247",
"$2.47", "97.3%", "Nov 30 14:00" without hand-written separators. ``lang`` is a language
code Babel knows ("tr", "en"). CSV exports do *not* use these: they carry plain machine
numbers (``1247``, ``2.47``) so a spreadsheet reads them in any locale.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent

DASH = "—"  # a figure that does not exist (no message, no latency sample)


def count(value: int | float | None, lang: str) -> str:
    """An integer count with the locale's grouping: tr "1.247", en "1,247"."""
    if value is None:
        return DASH
    return format_decimal(round(value), locale=lang)


def number(value: float | None, lang: str, *, digits: int = 1) -> str:
    """A decimal with at most ``digits`` fraction digits: tr "12,5", en "12.5"."""
    if value is None:
        return DASH
    return format_decimal(round(value, digits), locale=lang, decimal_quantization=False)


def money(value: Decimal | float | None, lang: str) -> str:
    """US dollars: tr "$2,47", en "$2.47". Amounts under a cent keep four significant
    digits (en "$0.003412", not "$0.00"): per-message LLM costs live there."""
    if value is None:
        return DASH
    amount = Decimal(str(value))
    if amount != 0 and abs(amount) < Decimal("0.01"):
        small = Decimal(f"{amount:.4g}")
        return format_currency(small, "USD", locale=lang, decimal_quantization=False)
    return format_currency(amount, "USD", locale=lang)


def percent(rate: float | None, lang: str) -> str:
    """A 0..1 rate as a percent with at most one fraction digit: tr "%97,3", en "97.3%"."""
    if rate is None:
        return DASH
    return format_percent(round(rate, 3), locale=lang, decimal_quantization=False)


def signed_percent(change: float | None, lang: str) -> str:
    """A relative change with its sign: en "+12.5%", "-3%"; "—" when there is no base."""
    if change is None:
        return DASH
    text = percent(change, lang)
    return text if change < 0 else "+" + text


def duration_ms(ms: float | None, lang: str) -> str:
    """A latency: under a second in whole milliseconds ("840 ms"), above in seconds with
    one fraction digit (tr "1,2 s", en "1.2 s")."""
    if ms is None:
        return DASH
    if ms < 1000:
        return f"{format_decimal(round(ms), locale=lang)} ms"
    return f"{number(ms / 1000, lang)} s"


def when(at: datetime, lang: str, *, hourly: bool) -> str:
    """A chart tick or table time: hourly "30 Kas 14:00" / "Nov 30 14:00", daily "30 Kas" /
    "Nov 30". ``at`` is shown in UTC, as periods are UTC."""
    day = format_skeleton("MMMd", at, locale=lang)
    if not hourly:
        return day
    return f"{day} {format_skeleton('Hm', at, locale=lang)}"


def day(at: datetime, lang: str) -> str:
    """A full date: tr "30 Kas 2026", en "Nov 30, 2026"."""
    return format_date(at, "medium", locale=lang)


def local_moment(at: datetime, lang: str, timezone: str) -> str:
    """A moment in the reader's timezone (IANA name): tr "30 Kas 2026 09:00", en "Nov 30,
    2026 09:00" (a digest's "as of")."""
    local = at.astimezone(ZoneInfo(timezone))
    return (
        f"{format_date(local, 'medium', locale=lang)} {format_skeleton('Hm', local, locale=lang)}"
    )


def change(now: float | Decimal | None, before: float | Decimal | None) -> float | None:
    """The relative change from ``before`` to ``now`` (0.25 = +25 %); None without a base."""
    if now is None or before is None or before == 0:
        return None
    return float(now) / float(before) - 1.0
