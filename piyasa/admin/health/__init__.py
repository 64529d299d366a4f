"""Health at a glance: component probes, a cached snapshot, history and events.

Entry point: :class:`HealthService`. Wiring in ``piyasa up`` (before ``make_web_app``)::

    health = HealthService(services, fleet=fleet)   # fleet: object with .snapshot(), or None
    services.extras["health"] = health               # make_web_app adds /, /api/health, /metrics
    await health.start()                             # loads history, first round, then every 5 s
    running.stoppers.append(("health", health.stop))

Later: ``health.set_fleet(fleet)`` / ``health.set_scheduler(provider)`` once they exist;
``health.subscribe(callback)`` for alerts; ``await health.run_all_now()`` for the quick action.
"""

from piyasa.admin.health.history import History, Incident, Overview, Transition, Uptime
from piyasa.admin.health.model import HealthEvent, Reading, Snapshot, State, overall_of, worst
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
    "overall_of",
    "worst",
]
