"""The rate-limit dashboard's data: use of Telegram's send limits per bot, chat and pair.

Telegram's published send limits (Bot FAQ, quoted in /work/shared/REFERENCE.md "Send
rates"): about 1 message/s in one chat (short bursts tolerated), at most 20 messages/min
in a group, about 30 messages/s per bot; beyond them, 429 with ``retry_after``. The fleet's
gate enforces the same figures (``piyasa.runtime.buckets.DeliveryLimits``), so the limits
shown are read from the running fleet's ``base_limits``, never restated here.

Sources: the fleet's :class:`~piyasa.runtime.ratewatch.RateWatch` (sends and 429s of this
process) and its limiter (bucket tokens now, memory or Redis). Use is a share of a limit
(0.85 = 85 %); headroom is what is left of it per minute at the last minute's pace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from piyasa.runtime.buckets import SendKey

WARN_SHARE = 0.8  # a limit used above this share is shown (and, sustained, warned about)
BURST_S = 10.0  # per-second limits are judged on the pace of the last 10 s


@dataclass
class PairUse:
    """One bot in one chat: its bucket now and its pace against the per-chat limits."""

    bot_id: int
    bot_name: str
    chat_id: int  # Telegram chat id
    chat_title: str
    is_group: bool
    bucket_tokens: float  # messages the bucket admits at once now
    bucket_size: int
    last_min: int
    last_hour: int
    limit_per_min: float  # 20 in a group (the group window), else 60 (1/s)
    n429_hour: int = 0
    last_retry_after: float | None = None

    @property
    def bucket_fill(self) -> float:
        """Share of the burst in use (0 = full bucket, 1 = empty: the next send waits)."""
        return 1.0 - self.bucket_tokens / self.bucket_size if self.bucket_size else 0.0

    @property
    def use(self) -> float:
        return self.last_min / self.limit_per_min if self.limit_per_min else 0.0

    @property
    def headroom_per_min(self) -> float:
        return max(0.0, self.limit_per_min - self.last_min)


@dataclass
class Totals:
    """A bot, a chat, or the whole fleet: messages and 429s over the last minute/hour."""

    key: int | None
    name: str
    last_min: int = 0
    last_hour: int = 0
    per_s_now: float = 0.0  # pace over the last BURST_S seconds
    limit_per_s: float | None = None  # 30/s per bot; the global cap for the fleet
    n429_min: int = 0
    n429_hour: int = 0
    last_retry_after: float | None = None
    max_use: float = 0.0  # the most used limit among its pairs (or its own per-second cap)

    @property
    def headroom_per_s(self) -> float | None:
        if self.limit_per_s is None:
            return None
        return max(0.0, self.limit_per_s - self.per_s_now)


@dataclass
class LimitsReport:
    at: datetime
    limits: dict[str, float]  # chat_rate, chat_burst, group_max, group_window, bot_max, ...
    fleet: Totals
    bots: list[Totals]
    chats: list[Totals]
    pairs: list[PairUse]  # busiest first
    scale_factor: float
    operator_scale: float | None  # set while the fleet runs below the operator's value
    autoadjust_enabled: bool
    min_scale: float
    events: list[dict[str, Any]] = field(default_factory=list)  # newest last

    @property
    def hot(self) -> list[PairUse]:
        """Pairs above ``WARN_SHARE`` of a limit now."""
        return [p for p in self.pairs if p.use >= WARN_SHARE]


def _names(fleet: Any) -> tuple[dict[int, str], dict[int, str]]:
    roster = fleet.roster
    bots = {b.id: b.name for b in roster.bots.values()}
    chats = {c.telegram_id: c.title or str(c.telegram_id) for c in roster.chats.values()}
    return bots, chats


def utilisation(fleet: Any) -> dict[tuple[Any, ...], float]:
    """Use of each limit now: ("pair", bot, chat) per-chat limits over the last minute,
    ("bot", bot) the per-bot cap and ("fleet",) the global cap over the last 10 s."""
    lim = fleet.base_limits
    rates = fleet.rates
    out: dict[tuple[Any, ...], float] = {}
    minute = Counter((s.bot_id, s.chat_id, s.is_group) for s in rates.sends_since(60.0))
    for (bot, chat, is_group), n in minute.items():
        per_min = lim.group_max * 60.0 / lim.group_window if is_group else lim.chat_rate * 60
        out[("pair", bot, chat)] = n / per_min
    burst = rates.sends_since(BURST_S)
    for bot, n in Counter(s.bot_id for s in burst).items():
        out[("bot", bot)] = n / BURST_S / (lim.bot_max / lim.bot_window)
    glob = fleet.gate.limiter.limits.global_max if fleet.gate else lim.global_max
    out[("fleet",)] = len(burst) / BURST_S / (glob / lim.global_window) if glob else 0.0
    return out


async def report(fleet: Any, *, top: int = 50) -> LimitsReport:
    """Everything `/limits` shows, from the running ``fleet`` (no database read).

    ``top`` bounds the pairs listed (busiest first: use, then 429s). Raises nothing; a
    limiter that cannot be read (Redis down) shows full buckets.
    """
    lim = fleet.base_limits
    rates = fleet.rates
    st = fleet.settings_store
    bot_names, chat_names = _names(fleet)
    minute = rates.sends_since(60.0)
    burst = rates.sends_since(BURST_S)
    hour = rates.hour_counts()
    r_hour = rates.refusals_since(3600.0)
    r_min = rates.refusals_since(60.0)
    groups = dict(rates.groups)
    pm = Counter((s.bot_id, s.chat_id) for s in minute)
    pairs_429 = Counter((r.bot_id, r.chat_id) for r in r_hour)
    last_ra: dict[tuple[int, int], float] = {(r.bot_id, r.chat_id): r.retry_after for r in r_hour}
    keys = sorted(set(pm) | set(hour) | set(pairs_429))
    uses = utilisation(fleet)

    tokens: list[float] = [float(lim.chat_burst)] * len(keys)
    if fleet.gate is not None and keys:
        try:
            tokens = await fleet.gate.limiter.tokens_many(
                [SendKey(b, c, groups.get(c, c < 0)) for b, c in keys]
            )
        except Exception:  # Redis away: the figures from this process still show
            pass
    pairs = []
    for (bot, chat), tok in zip(keys, tokens, strict=True):
        is_group = groups.get(chat, chat < 0)
        pairs.append(
            PairUse(
                bot_id=bot,
                bot_name=bot_names.get(bot, f"bot{bot}"),
                chat_id=chat,
                chat_title=chat_names.get(chat, str(chat)),
                is_group=is_group,
                bucket_tokens=round(tok, 2),
                bucket_size=lim.chat_burst,
                last_min=pm.get((bot, chat), 0),
                last_hour=hour.get((bot, chat), 0),
                limit_per_min=(
                    lim.group_max * 60.0 / lim.group_window if is_group else lim.chat_rate * 60
                ),
                n429_hour=pairs_429.get((bot, chat), 0),
                last_retry_after=last_ra.get((bot, chat)),
            )
        )
    pairs.sort(key=lambda p: (-p.use, -p.n429_hour, -p.bucket_fill, p.bot_id, p.chat_id))

    def totals(kind: str, idx: int, names: dict[int, str]) -> list[Totals]:
        acc: dict[int, Totals] = {}

        def get(k: int) -> Totals:
            if k not in acc:
                acc[k] = Totals(k, names.get(k, str(k)))
                if kind == "bot":
                    acc[k].limit_per_s = lim.bot_max / lim.bot_window
            return acc[k]

        for (b, c), n in pm.items():
            get((b, c)[idx]).last_min += n
        for (b, c), n in hour.items():
            get((b, c)[idx]).last_hour += n
        for s in burst:
            get((s.bot_id, s.chat_id)[idx]).per_s_now += 1 / BURST_S
        for r in r_hour:
            t = get((r.bot_id, r.chat_id)[idx])
            t.n429_hour += 1
            t.last_retry_after = r.retry_after
        for r in r_min:
            get((r.bot_id, r.chat_id)[idx]).n429_min += 1
        for p in pairs:
            t = get((p.bot_id, p.chat_id)[idx])
            t.max_use = max(t.max_use, p.use)
        if kind == "bot":
            for k, t in acc.items():
                t.max_use = max(t.max_use, uses.get(("bot", k), 0.0))
        return sorted(acc.values(), key=lambda t: (-t.max_use, -t.n429_hour, -t.last_min))

    glob = fleet.gate.limiter.limits.global_max if fleet.gate else lim.global_max
    fleet_t = Totals(
        None,
        "fleet",
        last_min=len(minute),
        last_hour=sum(hour.values()),
        per_s_now=round(len(burst) / BURST_S, 2),
        limit_per_s=glob / lim.global_window,
        n429_min=len(r_min),
        n429_hour=len(r_hour),
        last_retry_after=r_hour[-1].retry_after if r_hour else None,
        max_use=max(uses.values(), default=0.0),
    )
    adjuster = getattr(fleet, "autoadjust", None)
    op = st.get("autoadjust_operator_scale")
    return LimitsReport(
        at=fleet.wall(),
        limits={
            "chat_rate": lim.chat_rate,
            "chat_burst": lim.chat_burst,
            "group_max": lim.group_max,
            "group_window": lim.group_window,
            "bot_max": lim.bot_max,
            "bot_window": lim.bot_window,
            "global_max": glob,
        },
        fleet=fleet_t,
        bots=totals("bot", 0, bot_names)[:top],
        chats=totals("chat", 1, chat_names)[:top],
        pairs=pairs[:top],
        scale_factor=st.number("scale_factor"),
        operator_scale=None if op is None else float(op),
        autoadjust_enabled=bool(st.get("autoadjust_enabled")),
        min_scale=st.number("autoadjust_min_scale"),
        events=list(adjuster.events) if adjuster is not None else [],
    )
