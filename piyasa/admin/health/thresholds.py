"""Where healthy ends and warning or critical begins; every bound configurable.

Settings come from ``PIYASA_HEALTH_*`` variables (environment or the data dir's .env),
read through ``Settings.extra`` so the core settings class stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from piyasa.admin.health.model import State
from piyasa.config import ConfigError


@dataclass(frozen=True)
class Thresholds:
    latency_warning_ms: float = 100.0  # < 100 ms healthy
    latency_critical_ms: float = 500.0  # > 500 ms (or no answer) critical
    error_rate_critical_percent: float = 5.0
    error_rate_warning_percent: float = 1.0
    # Rates are taken over the rounds of the last minute, not one round: a fleet waiting out
    # a 429's retry_after makes no attempts for a round or two, which is no recovery.
    error_rate_window_s: float = 60.0
    # Fewer attempts than this in the window are judged as if the rest had succeeded, so
    # one failure out of two sends is not a 50 % error rate.
    error_rate_min_samples: float = 20.0
    disk_free_critical_percent: float = 10.0
    disk_free_warning_percent: float = 20.0
    memory_warning_percent: float = 80.0
    memory_critical_percent: float = 95.0
    cpu_warning_percent: float = 90.0
    pool_use_warning_percent: float = 80.0
    last_message_warning_s: float = 900.0
    interval_s: float = 5.0
    probe_timeout_s: float = 2.0

    def latency(self, ms: float | None) -> State:
        if ms is None:
            return State.CRITICAL
        if ms > self.latency_critical_ms:
            return State.CRITICAL
        if ms >= self.latency_warning_ms:
            return State.WARNING
        return State.HEALTHY

    def error_rate(self, errors: float, total: float) -> State:
        """The share of failed attempts (``total`` counts them too).

        Rates need a denominator; with none, errors alone say nothing about the rate. A
        sample smaller than ``error_rate_min_samples`` is judged as if the missing attempts
        had succeeded: a single failure among a few sends stays healthy, while a storm in
        which every one of a few attempts fails (the sender honours ``retry_after``, so
        attempts are few) still reads critical. The warning band needs a full sample.
        """
        if total <= 0 or errors <= 0:
            return State.HEALTHY
        if 100.0 * errors / max(total, self.error_rate_min_samples) > (
            self.error_rate_critical_percent
        ):
            return State.CRITICAL
        if total >= self.error_rate_min_samples and (
            100.0 * errors / total > self.error_rate_warning_percent
        ):
            return State.WARNING
        return State.HEALTHY

    def disk_free(self, free_percent: float) -> State:
        if free_percent < self.disk_free_critical_percent:
            return State.CRITICAL
        if free_percent < self.disk_free_warning_percent:
            return State.WARNING
        return State.HEALTHY

    def memory(self, used_percent: float) -> State:
        if used_percent > self.memory_critical_percent:
            return State.CRITICAL
        if used_percent > self.memory_warning_percent:
            return State.WARNING
        return State.HEALTHY

    def cpu(self, percent: float) -> State:
        return State.WARNING if percent > self.cpu_warning_percent else State.HEALTHY

    def pool_use(self, used: int, capacity: int) -> State:
        if capacity <= 0:
            return State.HEALTHY
        return (
            State.WARNING
            if 100.0 * used / capacity >= self.pool_use_warning_percent
            else State.HEALTHY
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Thresholds:
        """Read ``PIYASA_HEALTH_<FIELD>`` (upper case) overrides, e.g.
        ``PIYASA_HEALTH_LATENCY_WARNING_MS=150``."""
        values: dict[str, float] = {}
        for f in fields(cls):
            name = "PIYASA_HEALTH_" + f.name.upper()
            raw = env.get(name)
            if raw is None or not str(raw).strip():
                continue
            try:
                value = float(str(raw).strip().rstrip("%"))
            except ValueError:
                raise ConfigError(
                    f"{name}={raw!r} is not a number; use e.g. {name}={f.default}"
                ) from None
            if value < 0:
                raise ConfigError(
                    f"{name}={raw!r} must not be negative; use e.g. {name}={f.default}"
                )
            values[f.name] = value
        t = cls(**values)
        if t.latency_warning_ms > t.latency_critical_ms:
            raise ConfigError(
                "PIYASA_HEALTH_LATENCY_WARNING_MS must not exceed PIYASA_HEALTH_LATENCY_CRITICAL_MS"
            )
        if t.interval_s < 0.05 or t.probe_timeout_s < 0.01:
            raise ConfigError(
                "PIYASA_HEALTH_INTERVAL_S/PIYASA_HEALTH_PROBE_TIMEOUT_S are too small; "
                "use e.g. PIYASA_HEALTH_INTERVAL_S=5"
            )
        return t
