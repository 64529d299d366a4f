"""`/health`: the overall line, one line per component, [Details] per component, a live
mode, and the quick actions (operator and up). The alert views live here too, so an
alert and `/health` show a component, and offer its fix, the same way.

Everything reads the HealthService's cached snapshot (``ctx.extras["health"]``): a
reader never waits on a probe. Quick actions call :mod:`piyasa.admin.health.actions`.

Modules: ``words`` (labels, states, the matching quick fix), ``views`` (overview, details,
the alert view), ``live`` (live mode) and ``command`` (/health and its actions). Importing
the package declares the command.
"""

from __future__ import annotations

from chatops.commands.health import command
from chatops.commands.health.live import LiveViews
from chatops.commands.health.views import alert_view, overview, signature
from chatops.commands.health.words import quick_fixes

__all__ = ["LiveViews", "alert_view", "command", "overview", "quick_fixes", "signature"]
