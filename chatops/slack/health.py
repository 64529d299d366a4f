"""The ``slack`` health component: is Slack accepting the app's bot token?

Added to the HealthService by ``chatops.startup.Surfaces`` when Slack is configured. It
reads what start-up and its retries found (``Surfaces.problems["slack"]``), and asks
``auth.test`` again once every :data:`RECHECK_S` while all is well, so a token revoked
while Piyasa runs turns the component critical too. A state change is a health event:
the alerter posts it to the other surface (the Telegram admin chats).
"""

from __future__ import annotations

import time
from typing import Any

from piyasa.admin.health.model import Reading, State
from piyasa.admin.health.probes import ProbeContext

RECHECK_S = 60.0


class SlackProbe:
    """Health probe for the Slack app (see the module docstring)."""

    name = "slack"

    def __init__(self, surfaces: Any, recheck_s: float = RECHECK_S) -> None:
        self.surfaces = surfaces
        self.recheck_s = recheck_s
        self._checked = time.monotonic()  # start-up has just checked

    async def check(self, ctx: ProbeContext) -> Reading:
        """Critical with the reason (secrets redacted) while Slack refuses the token or
        cannot be reached; healthy otherwise."""
        surfaces = self.surfaces
        if surfaces.slack is None:
            return Reading(self.name, State.UNKNOWN, "not running", configured=False)
        problem = surfaces.problems.get("slack")
        if problem is None and time.monotonic() - self._checked >= self.recheck_s:
            self._checked = time.monotonic()
            problem = await surfaces.recheck_slack()
        if problem:
            return Reading(self.name, State.CRITICAL, problem, error="auth.test")
        bot = surfaces.slack.bot_name
        return Reading(
            self.name,
            State.HEALTHY,
            "bot token accepted",
            {"bot": bot} if bot else {},
            private=frozenset({"bot"}),
        )
