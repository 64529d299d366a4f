"""Threshold bands and the worst-of rule that gives the overall state."""

from __future__ import annotations

import pytest

from piyasa.admin.health import State, Thresholds, worst
from piyasa.config import ConfigError


@pytest.mark.parametrize(
    ("ms", "state"),
    [
        (0.5, State.HEALTHY),
        (99.9, State.HEALTHY),
        (100.0, State.WARNING),
        (500.0, State.WARNING),
        (500.1, State.CRITICAL),
        (None, State.CRITICAL),  # no answer
    ],
)
def test_latency_bands(ms: float | None, state: State) -> None:
    assert Thresholds().latency(ms) is state


@pytest.mark.parametrize(
    ("errors", "total", "state"),
    [
        (0, 100, State.HEALTHY),
        (5, 100, State.WARNING),
        (6, 100, State.CRITICAL),
        (3, 0, State.HEALTHY),
        # Fewer than 20 attempts are judged as if the rest had succeeded.
        (1, 2, State.HEALTHY),  # one failure out of two sends is no 50 % error rate
        (1, 19, State.HEALTHY),  # nor a warning: that band needs a full sample
        (2, 2, State.CRITICAL),  # every attempt of a storm failing still is critical
        (2, 19, State.CRITICAL),
        (1, 20, State.WARNING),
        (2, 40, State.WARNING),
        (3, 40, State.CRITICAL),
    ],
)
def test_error_rate_above_five_percent_is_critical(errors: int, total: int, state: State) -> None:
    assert Thresholds().error_rate(errors, total) is state


def test_host_bands() -> None:
    t = Thresholds()
    assert t.disk_free(9.9) is State.CRITICAL
    assert t.disk_free(50) is State.HEALTHY
    assert t.memory(80.1) is State.WARNING
    assert t.memory(79) is State.HEALTHY
    assert t.cpu(90.5) is State.WARNING
    assert t.cpu(89) is State.HEALTHY


def test_worst_of_ranks_unknown_above_healthy_and_below_warning() -> None:
    assert worst([State.HEALTHY, State.HEALTHY]) is State.HEALTHY
    assert worst([State.HEALTHY, State.UNKNOWN]) is State.UNKNOWN
    assert worst([State.UNKNOWN, State.WARNING, State.HEALTHY]) is State.WARNING
    assert worst([State.WARNING, State.CRITICAL, State.UNKNOWN]) is State.CRITICAL
    assert worst([]) is State.UNKNOWN


def test_thresholds_are_configurable_from_the_environment() -> None:
    t = Thresholds.from_env(
        {"PIYASA_HEALTH_LATENCY_WARNING_MS": "50", "PIYASA_HEALTH_CPU_WARNING_PERCENT": "75%"}
    )
    assert t.latency(60) is State.WARNING
    assert t.cpu(80) is State.WARNING
    t = Thresholds.from_env(
        {"PIYASA_HEALTH_ERROR_RATE_WINDOW_S": "30", "PIYASA_HEALTH_ERROR_RATE_MIN_SAMPLES": "2"}
    )
    assert t.error_rate_window_s == 30.0
    assert t.error_rate(1, 2) is State.CRITICAL
    with pytest.raises(ConfigError, match="PIYASA_HEALTH_INTERVAL_S"):
        Thresholds.from_env({"PIYASA_HEALTH_INTERVAL_S": "soon"})
    with pytest.raises(ConfigError, match="must not exceed"):
        Thresholds.from_env({"PIYASA_HEALTH_LATENCY_WARNING_MS": "900"})
