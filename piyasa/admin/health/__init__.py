"""Health at a glance: component probes, a cached snapshot, history and events.

Entry point: :class:`HealthService` (``piyasa.admin.health.service``).
"""

from piyasa.admin.health.history import History, Incident, Overview, Transition, Uptime
from piyasa.admin.health.model import HealthEvent, Reading, Snapshot, State, worst
from piyasa.admin.health.probes import ProbeContext
from piyasa.admin.health.service import HealthService
from piyasa.admin.health.thresholds import Thresholds

__all__ = [
    "HealthEvent",
    "HealthService",
    "History",
    "Incident",
    "Overview",
    "ProbeContext",
    "Reading",
    "Snapshot",
    "State",
    "Thresholds",
    "Transition",
    "Uptime",
    "worst",
]
