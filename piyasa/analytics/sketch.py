"""A mergeable latency histogram with log-spaced bins (the DDSketch idea, fixed layout).

Bin ``i >= 1`` holds latencies in ``(GAMMA**(i-1), GAMMA**i]`` milliseconds, bin 0 those
<= 1 ms. A quantile is read as the representative value ``2*GAMMA**i/(GAMMA+1)`` of the bin
holding its rank, whose relative error is at most ``(GAMMA-1)/(GAMMA+1)`` ≈ 0.99 % for
``GAMMA`` = 1.02 (Masson, Rim, Lee: "DDSketch", VLDB 2019). The rank convention is the
sketch's: the value at sorted index ``floor(q * (n - 1))``; estimates are clamped to the
exact min/max kept beside the histogram.

Bins are fixed, so histograms merge by adding counts: across hours, days, chats and bots.
Stored form (``encode``): a little-endian uint16 offset (first non-empty bin) followed by
uint32 counts up to the last non-empty bin; ``None`` for an empty histogram.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

import numpy as np

GAMMA = 1.02
NBINS = 1200  # GAMMA**1199 ≈ 2e10 ms: anything longer lands in the last bin
_LOG_GAMMA = math.log(GAMMA)
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
#: Rollups count in ``lat_slow`` the latencies whose bin reads above this (ms), so "p95 over
#: 15 s" (an overview issue) is decided from SQL sums, without merging histograms.
SLOW_MS = 15_000.0


def _first_bin_over(ms: float) -> int:
    i = 0
    while i < NBINS - 1 and representative(i) <= ms:
        i += 1
    return i


def bin_of(ms: float) -> int:
    """The bin index of a latency in milliseconds."""
    if ms <= 1:
        return 0
    return min(NBINS - 1, math.ceil(math.log(ms) / _LOG_GAMMA - 1e-12))


def bounds(i: int) -> tuple[float, float]:
    """(low, high] in milliseconds of bin ``i``."""
    return (0.0, 1.0) if i == 0 else (GAMMA ** (i - 1), GAMMA**i)


def representative(i: int) -> float:
    return 1.0 if i == 0 else 2 * GAMMA**i / (GAMMA + 1)


def empty() -> np.ndarray:
    return np.zeros(NBINS, dtype=np.int64)


def from_values(values: Iterable[float]) -> np.ndarray:
    counts = empty()
    for v in values:
        counts[bin_of(v)] += 1
    return counts


def encode(counts: np.ndarray) -> bytes | None:
    nz = np.flatnonzero(counts)
    if nz.size == 0:
        return None
    lo, hi = int(nz[0]), int(nz[-1]) + 1
    return struct.pack("<H", lo) + counts[lo:hi].astype("<u4").tobytes()


def add_into(counts: np.ndarray, blob: bytes | None) -> None:
    """Add a stored histogram into ``counts`` (in place)."""
    if not blob:
        return
    (lo,) = struct.unpack_from("<H", blob)
    part = np.frombuffer(blob, dtype="<u4", offset=2)
    counts[lo : lo + part.size] += part


def merge(blobs: Iterable[bytes | None]) -> np.ndarray:
    counts = empty()
    for blob in blobs:
        add_into(counts, blob)
    return counts


def quantile(
    counts: np.ndarray, q: float, lo: float | None = None, hi: float | None = None
) -> float | None:
    """The ``q`` quantile (0..1) estimate, clamped to the exact [lo, hi] when given."""
    total = int(counts.sum())
    if total == 0:
        return None
    rank = math.floor(q * (total - 1))
    i = int(np.searchsorted(np.cumsum(counts), rank, side="right"))
    value = representative(i)
    if lo is not None:
        value = max(value, float(lo))
    if hi is not None:
        value = min(value, float(hi))
    return value


def exact_quantile(values: list[float], q: float) -> float | None:
    """The same rank convention over raw values (for tests and the benchmark's error)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[math.floor(q * (len(ordered) - 1))])


def bins(counts: np.ndarray) -> list[tuple[float, float, int]]:
    """Non-empty bins as (low ms, high ms, count), lowest first."""
    return [(*bounds(int(i)), int(counts[i])) for i in np.flatnonzero(counts)]


def merge_grouped(groups: list[int], blobs: list[bytes], ngroups: int) -> np.ndarray:
    """Merge many stored histograms at once: row ``g`` of the result (``ngroups`` × NBINS)
    sums the blobs whose group is ``g``. Vectorised: one pass over all counts."""
    if not blobs:
        return np.zeros((ngroups, NBINS), dtype=np.int64)
    los = np.fromiter((int.from_bytes(b[:2], "little") for b in blobs), np.int64, len(blobs))
    lens = np.fromiter(((len(b) - 2) // 4 for b in blobs), np.int64, len(blobs))
    data = np.frombuffer(b"".join(b[2:] for b in blobs), dtype="<u4")
    starts = np.cumsum(lens) - lens
    pos = np.arange(data.size, dtype=np.int64) - np.repeat(starts, lens)
    flat = (
        (np.repeat(np.asarray(groups, dtype=np.int64), lens) * NBINS) + np.repeat(los, lens) + pos
    )
    merged = np.bincount(flat, weights=data, minlength=ngroups * NBINS)
    return merged.astype(np.int64).reshape(ngroups, NBINS)


def quantiles_rows(
    counts: np.ndarray, qs: tuple[float, ...], lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """``quantile`` for every row of ``counts`` (rows × NBINS) at once: rows × len(qs),
    NaN for empty rows; clamped to the rows' exact ``lo``/``hi``."""
    cum = np.cumsum(counts, axis=1)
    total = cum[:, -1]
    reps = 2 * GAMMA ** np.arange(NBINS, dtype=np.float64) / (GAMMA + 1)
    reps[0] = 1.0
    out = np.full((counts.shape[0], len(qs)), np.nan)
    has = total > 0
    for j, q in enumerate(qs):
        rank = np.floor(q * (total - 1))
        idx = (cum > rank[:, None]).argmax(axis=1)
        out[has, j] = np.minimum(np.maximum(reps[idx[has]], lo[has]), hi[has])
    return out


#: The first bin whose representative value is above ``SLOW_MS`` (rollups' ``lat_slow``).
SLOW_BIN = _first_bin_over(SLOW_MS)


def reads_over(
    q: float, count: int, slow: int, lo: float | None, hi: float | None, limit: float
) -> bool:
    """Whether the ``q`` quantile estimate (``quantile``) is above ``limit`` — the
    threshold ``lat_slow`` counts against (``SLOW_MS``) — from sums only: ``count``
    latencies of which ``slow`` lie in bins from ``SLOW_BIN`` on, exact min ``lo``, max
    ``hi``. The estimate ``clamp(representative(i), lo, hi)`` is above the limit exactly
    when ``lo`` is, or when the bin at the rank is a slow one and ``hi`` is above too."""
    if count == 0:
        return False
    if lo is not None and lo > limit:
        return True
    rank = math.floor(q * (count - 1))
    return count - slow <= rank and (hi is None or hi > limit)
