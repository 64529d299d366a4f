"""Synthetic message history for ``piyasa bench analytics``: raw rows loaded fast
(executemany on SQLite, COPY on PostgreSQL) and the rollups those rows produce, computed
with numpy in bulk (same bins, buckets and sums as ``piyasa.analytics.rollup``; the real job
is exercised on a sample by the ingest measurement and by tests/analytics).

Shape: ``bots`` bots, each talking in 5 of ``chats`` chats, 4 topics, one model per bot,
uniform over ``days`` days ending at ``end``; 92 % sent, 5 % failed at Telegram, 2 % LLM
429 ("quota", no latency or tokens), 1 % still queued; log-normal latencies per bot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from piyasa.analytics import sketch

TOPICS = ("bist", "fx", "crypto", "macro")
MODELS = ("gpt-4o-mini", "gpt-4.1-mini", "gpt-5-nano")
PRICES = {m: (0.15, 0.075, 0.60) for m in MODELS}  # USD per million: in, cached, out
STATUS = ("sent", "failed", "failed", "queued")  # codes 0..3: sent, telegram, quota, queued
ERROR = (None, "telegram", "quota", None)


@dataclass
class History:
    end: datetime
    start: datetime
    bot: np.ndarray
    chat: np.ndarray
    topic: np.ndarray
    model: np.ndarray
    ts: np.ndarray  # seconds since start (int64)
    status: np.ndarray
    latency: np.ndarray  # -1: none
    tin: np.ndarray
    tout: np.ndarray
    cached: np.ndarray
    cost: np.ndarray  # micro-USD


def synth(n: int, bots: int, chats: int, days: int, end: datetime, seed: int = 15) -> History:
    rng = np.random.default_rng(seed)
    bot = rng.integers(1, bots + 1, n, dtype=np.int32)
    chat = ((bot * 7 + rng.integers(0, 5, n)) % chats + 1).astype(np.int32)
    topic = rng.integers(0, len(TOPICS), n, dtype=np.int8)
    model = (bot % len(MODELS)).astype(np.int8)
    ts = rng.integers(0, days * 86400, n, dtype=np.int64)
    status = rng.choice(4, n, p=[0.92, 0.05, 0.02, 0.01]).astype(np.int8)
    latency = (rng.lognormal(7.0 + (bot % 5) * 0.15, 0.6) + 1).astype(np.int32)
    tin = rng.integers(200, 3000, n, dtype=np.int32)
    tout = rng.integers(20, 400, n, dtype=np.int32)
    cached = (tin * rng.choice([0.0, 0.0, 0.5, 1.0], n)).astype(np.int32)
    quota = status == 2
    latency[quota] = -1
    tin[quota] = tout[quota] = cached[quota] = 0
    cost = np.rint((tin - cached) * 0.15 + cached * 0.075 + tout * 0.60).astype(np.int64)
    start = end - timedelta(days=days)
    return History(
        end, start, bot, chat, topic, model, ts, status, latency, tin, tout, cached, cost
    )


def raw_rows(h: History, lo: int, hi: int, sqlite: bool) -> list[tuple]:
    """Rows for ``messages`` (bot_id, chat_id, author_kind, text, created_at, topic, model,
    latency_ms, tokens_in, tokens_out, tokens_cached, cost_usd, status, error_class, rolled)."""
    out = []
    base = h.start.replace(tzinfo=None) if sqlite else h.start
    for i in range(lo, hi):
        at = base + timedelta(seconds=int(h.ts[i]))
        st = int(h.status[i])
        lat = int(h.latency[i])
        out.append(
            (
                int(h.bot[i]),
                int(h.chat[i]),
                "bot",
                "",
                at.strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else at,
                TOPICS[h.topic[i]],
                MODELS[h.model[i]],
                lat if lat >= 0 else None,
                int(h.tin[i]),
                int(h.tout[i]),
                int(h.cached[i]),
                int(h.cost[i]) / 1_000_000,
                STATUS[st],
                ERROR[st],
                2 if st != 3 else 1,
            )
        )
    return out


COLUMNS = (
    "bot_id",
    "chat_id",
    "author_kind",
    "text",
    "created_at",
    "topic",
    "model",
    "latency_ms",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "cost_usd",
    "status",
    "error_class",
    "rolled",
)


def _bins(latency: np.ndarray) -> np.ndarray:
    safe = np.maximum(latency, 1).astype(np.float64)
    b = np.ceil(np.log(safe) / math.log(sketch.GAMMA) - 1e-12).astype(np.int64)
    b[latency <= 1] = 0
    return np.clip(b, 0, sketch.NBINS - 1)


def rollups(
    h: History, grain: str, dims: tuple[str, ...], per_bot: bool = True
) -> tuple[list[str], list[tuple]]:
    """Rollup rows of ``grain`` ("h"/"d") keyed by bucket, bot (unless not ``per_bot``: the
    fleet table) and ``dims`` (chat/topic/model): (column names, row tuples)."""
    size = 3600 if grain == "h" else 86400
    first = h.start.replace(minute=0, second=0, microsecond=0)
    if grain == "d":
        first = first.replace(hour=0)
    offset = int((h.start - first).total_seconds())
    bucket = (h.ts + offset) // size
    parts = [bucket, h.bot.astype(np.int64)] if per_bot else [bucket]
    radix = [int(bucket.max()) + 1, int(h.bot.max()) + 1][: len(parts)]
    for d in dims:
        arr = {"chat": h.chat, "topic": h.topic, "model": h.model}[d].astype(np.int64)
        parts.append(arr)
        radix.append(int(arr.max()) + 1)
    key = np.zeros_like(bucket)
    for arr, r in zip(parts, radix, strict=True):
        key = key * r + arr
    keys, inv = np.unique(key, return_inverse=True)
    k = keys.size
    decided = h.status >= 0
    sent = h.status == 0
    failed = (h.status == 1) | (h.status == 2)
    final = h.status != 3
    has_lat = h.latency >= 0

    def total(mask_or_vals: np.ndarray) -> np.ndarray:
        return np.bincount(inv, weights=mask_or_vals, minlength=k).astype(np.int64)

    sums = {
        "messages": total(decided.astype(np.float64)),
        "sent": total(sent.astype(np.float64)),
        "failed": total(failed.astype(np.float64)),
        "rate_limited": total((h.status == 2).astype(np.float64)),
        "tokens_in": total(h.tin.astype(np.float64)),
        "tokens_out": total(h.tout.astype(np.float64)),
        "tokens_cached": total(h.cached.astype(np.float64)),
        "cost_micros": total(h.cost.astype(np.float64)),
        "lat_count": total(has_lat.astype(np.float64)),
        "lat_sum": total(np.where(has_lat, h.latency, 0).astype(np.float64)),
        "lat_slow": total((has_lat & (_bins(h.latency) >= sketch.SLOW_BIN)).astype(np.float64)),
    }
    del final
    big = np.iinfo(np.int32).max
    lat_min = np.full(k, big, dtype=np.int64)
    np.minimum.at(lat_min, inv[has_lat], h.latency[has_lat])
    lat_max = np.full(k, -1, dtype=np.int64)
    np.maximum.at(lat_max, inv[has_lat], h.latency[has_lat])
    pair = inv[has_lat].astype(np.int64) * sketch.NBINS + _bins(h.latency[has_lat])
    pairs, counts = np.unique(pair, return_counts=True)
    owner = pairs // sketch.NBINS
    cuts = np.searchsorted(owner, np.arange(k + 1))
    rest = keys.copy()
    cols: list[np.ndarray] = []
    for r in reversed(radix):
        cols.append(rest % r)
        rest //= r
    cols.reverse()
    # All histograms at once: one dense uint32 run per key, sliced out of one buffer.
    bin_idx = (pairs % sketch.NBINS).astype(np.int64)
    has = cuts[1:] > cuts[:-1]
    lo = np.zeros(k, dtype=np.int64)
    hi = np.full(k, -1, dtype=np.int64)
    lo[has] = bin_idx[cuts[:-1][has]]
    hi[has] = bin_idx[cuts[1:][has] - 1]
    length = hi - lo + 1
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    dense = np.zeros(int(length.sum()), dtype="<u4")
    dense[start[owner] + bin_idx - lo[owner]] = counts
    buf = dense.tobytes()
    blobs = [
        int(a).to_bytes(2, "little") + buf[4 * int(s0) : 4 * (int(s0) + int(n))] if n > 0 else None
        for a, s0, n in zip(lo.tolist(), start.tolist(), length.tolist(), strict=True)
    ]
    first_ts = first
    bucket_of = {b: first_ts + timedelta(seconds=size * b) for b in np.unique(cols[0]).tolist()}
    columns = ["grain", "bucket"]
    values: list[list[Any]] = [[grain] * k, [bucket_of[b] for b in cols[0].tolist()]]
    if per_bot:
        columns.append("bot_id")
        values.append(cols[1].tolist())
    for d, c in zip(dims, cols[len(columns) - 1 :], strict=True):
        if d == "chat":
            columns.append("chat_id")
            values.append(c.tolist())
        else:
            names = TOPICS if d == "topic" else MODELS
            columns.append(d)
            values.append([names[v] for v in c.tolist()])
    for n, v in sums.items():
        columns.append(n)
        values.append(v.tolist())
    ok = lat_max >= 0
    columns += ["lat_min", "lat_max", "hist"]
    values.append([m if o else None for m, o in zip(lat_min.tolist(), ok.tolist(), strict=True)])
    values.append([m if o else None for m, o in zip(lat_max.tolist(), ok.tolist(), strict=True)])
    values.append(blobs)
    return columns, list(zip(*values, strict=True))


def error_rows(h: History, grain: str) -> list[dict[str, Any]]:
    size = 3600 if grain == "h" else 86400
    first = h.start.replace(minute=0, second=0, microsecond=0)
    if grain == "d":
        first = first.replace(hour=0)
    offset = int((h.start - first).total_seconds())
    out = []
    for code in (1, 2):
        mask = h.status == code
        bucket = (h.ts[mask] + offset) // size
        key = bucket * (int(h.bot.max()) + 1) + h.bot[mask]
        keys, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        last = np.zeros(keys.size, dtype=np.int64)
        np.maximum.at(last, inv, h.ts[mask])
        for kv, n, seen in zip(keys, counts, last, strict=True):
            b, bot = divmod(int(kv), int(h.bot.max()) + 1)
            out.append(
                {
                    "grain": grain,
                    "bucket": first + timedelta(seconds=size * b),
                    "bot_id": bot,
                    "error_class": ERROR[code],
                    "count": int(n),
                    "last_seen": h.start + timedelta(seconds=int(seen)),
                }
            )
    return out


def now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
