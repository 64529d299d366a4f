"""Notifications and alerting (issue 13): hear about trouble once, anywhere.

- :mod:`.events` — the typed :class:`Event` and the one :class:`Bus` producers emit on;
- :mod:`.rules` — matchers, durations, quiet hours, Alertmanager timers, inhibition;
- :mod:`.pipeline` — events -> incidents (dedupe, thresholds, flapping, silences,
  inhibition) and the timers that say when a notice is owed;
- :mod:`.routing` — routes, default destinations, per-user preferences;
- :mod:`.outbox` — the delivery rows and how a channel is sent to;
- :mod:`.store` — the center (read state), ack / snooze / resolve, silences;
- :mod:`.service` — :class:`NotifyService`, which runs it all;
- :mod:`.producers` — the existing producers (health, fleet, users) wired to the bus;
- :mod:`.channels` — email, webhooks, Apprise (``channels.base``: the interface);
- :mod:`.digest` — the per-user daily or weekly digest.

Only the light modules are imported here, so a producer (the fleet, the user service)
can emit without loading the service; ``NotifyService`` is in :mod:`.service`.
"""

from piyasa.admin.notify.events import Bus, Event, emit
from piyasa.admin.notify.rules import NotifyError, Timers

__all__ = ["Bus", "Event", "NotifyError", "Timers", "emit"]
