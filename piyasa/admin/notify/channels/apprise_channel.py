"""Discord, Microsoft Teams, ntfy and the rest of the long tail, through Apprise.

Apprise (https://github.com/caronc/apprise, tested from 2.3) knows over a hundred services,
each addressed by a URL: ``discord://id/token``, ``workflow://host/workflow/signature``
(Microsoft Teams through Power Automate workflows), ``ntfys://ntfy.example/topic``,
``json://host:port/path`` (any HTTP receiver) and so on — see the Apprise wiki for each
form. Options: ``url`` (required), ``timeout`` (seconds, default 30).

Apprise's services are blocking (``requests``), so each send runs in a worker thread and
never holds the event loop. Apprise reports success or failure per service without a
retry hint, so a failure is a transient DeliveryError (the outbox retries it). The URL
holds the service's token: only its scheme appears in errors and ``repr``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from piyasa.admin.notify.channels.base import DeliveryError, Options, OutgoingMessage
from piyasa.admin.notify.channels.problems import ChannelConfigError, Problem
from piyasa.logs import REDACTOR

if TYPE_CHECKING:
    import apprise

OPTIONS = ("url", "timeout")
# Our severities as Apprise's notification types (its icon and colour per service).
NOTIFY_TYPES = {
    "critical": "failure",
    "warning": "warning",
    "info": "info",
    "success": "success",
}


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else url[:12]


def _load(url: str) -> apprise.Apprise | None:
    """An Apprise object holding only ``url``, or None when Apprise cannot parse it."""
    import apprise

    box = apprise.Apprise()
    return box if box.add(url) else None


class AppriseChannel:
    """Sends each notification to one Apprise URL."""

    kind = "apprise"

    def __init__(self, name: str, *, url: str, timeout: float = 30.0) -> None:
        self.name = name
        self._url = url
        REDACTOR.add(url)
        self.scheme = _scheme(url)
        self.timeout = timeout

    def __repr__(self) -> str:  # never the URL: it holds the service's token
        return f"AppriseChannel({self.name!r}, {self.scheme}://…)"

    @classmethod
    def from_config(cls, name: str, config: dict[str, str]) -> AppriseChannel:
        """Raises ChannelConfigError for a missing URL or one Apprise does not understand."""
        opts = Options(name, config, OPTIONS)
        url = opts.required("url")
        REDACTOR.add(url)  # Apprise logs an unparseable URL whole, token and all
        if _load(url) is None:
            raise ChannelConfigError(Problem("bad_apprise_url", name=name, scheme=_scheme(url)))
        return cls(name, url=url, timeout=opts.number("timeout", 30.0, 0.1, 300.0))

    def _notify(self, message: OutgoingMessage) -> bool:
        """The blocking Apprise call (runs in a worker thread)."""
        import apprise

        box = _load(self._url)
        if box is None:
            return False
        lines = [message.body_text]
        lines += [f"{key}: {value}" for key, value in message.fields.items()]
        if message.link:
            lines.append(message.link)
        notify_type = apprise.NotifyType(NOTIFY_TYPES.get(message.severity, "info"))
        return bool(
            box.notify(
                body="\n".join(lines),
                title=message.title,
                notify_type=notify_type,
                body_format=apprise.NotifyFormat.TEXT,
            )
        )

    async def send(self, message: OutgoingMessage) -> None:
        """Sends through Apprise in a thread; raises a transient DeliveryError when the
        service refused it, could not be reached, or did not finish within ``timeout``."""
        problem = Problem("apprise_failed", scheme=self.scheme)
        try:
            async with asyncio.timeout(self.timeout):
                delivered = await asyncio.to_thread(self._notify, message)
        except TimeoutError:
            raise DeliveryError(problem) from None
        if not delivered:
            raise DeliveryError(problem)

    async def check(self) -> list[str]:
        """Apprise has no dry run for most services, so this only re-checks that the URL
        parses; a test notification (``send``) is the way to prove the far end."""
        if await asyncio.to_thread(_load, self._url) is None:
            return [Problem("bad_apprise_url", name=self.name, scheme=self.scheme)]
        return []
