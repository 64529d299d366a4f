"""The channel interface the notification core delivers through, and its factory.

A channel turns one :class:`OutgoingMessage` into a message somewhere outside chat: email
(``smtp.py``), a signed webhook (``webhook.py``), or one of Apprise's services
(``apprise_channel.py``: Discord, Microsoft Teams, ntfy, ...). Telegram and Slack are not
channels here: the chat surfaces deliver those with their own buttons.

``send`` either returns (the far end accepted the message) or raises :class:`DeliveryError`;
the core's outbox records the reason and retries unless the error is ``permanent``.
Configuration arrives as ``dict[str, str]`` (what the operator typed or the config file
held) and is checked by :func:`build_channel` before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from piyasa.admin.notify.channels.problems import ChannelConfigError, Problem

SEVERITIES = ("critical", "warning", "info", "success")
KINDS = ("email", "webhook", "apprise")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0", ""}


@dataclass(frozen=True)
class OutgoingMessage:
    """One notification as a channel sends it, already in the recipient's language."""

    title: str  # localised for the recipient
    body_text: str  # plain text
    body_html: str | None  # for email; None -> text only
    severity: str  # "critical" | "warning" | "info" | "success"
    fingerprint: str
    source: str
    link: str | None = None  # status page / details URL
    fields: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """A send that did not reach its destination.

    ``reason`` is plain text without secrets (often a :class:`Problem`, translatable);
    ``permanent`` means retrying the same message cannot help (a 4xx, a refused
    recipient, a wrong password); ``retry_after_s`` is how long the far end asked us to
    wait (HTTP ``Retry-After``), when it said.
    """

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after_s = retry_after_s


class Channel(Protocol):
    """What the notification core needs of a channel."""

    kind: str  # "email" | "webhook" | "apprise"
    name: str  # operator-chosen, unique

    async def send(self, message: OutgoingMessage) -> None:
        """Deliver ``message``; raises :class:`DeliveryError`."""
        ...

    async def check(self) -> list[str]:
        """Configuration problems found by trying the far end (empty = fine)."""
        ...


def build_channel(kind: str, name: str, config: dict[str, str]) -> Channel:
    """A channel of ``kind`` named ``name`` from its ``config``.

    Nothing is contacted here (``check()`` does that). Raises :class:`ChannelConfigError`
    (a ``ValueError`` whose ``problem`` is translatable) for an unknown kind, a bad name, a
    missing or unknown option, or a value that cannot work (a webhook URL that is not
    http(s), an Apprise URL Apprise does not know, ``tls`` and ``starttls`` together).
    The client libraries load only for the kind asked for (Apprise loads its plugins).
    """
    if not _NAME.match(name or ""):
        raise ChannelConfigError(Problem("bad_name", name=name))
    if kind == "email":
        from piyasa.admin.notify.channels.smtp import EmailChannel

        return EmailChannel.from_config(name, config)
    if kind == "webhook":
        from piyasa.admin.notify.channels.webhook import WebhookChannel

        return WebhookChannel.from_config(name, config)
    if kind == "apprise":
        from piyasa.admin.notify.channels.apprise_channel import AppriseChannel

        return AppriseChannel.from_config(name, config)
    raise ChannelConfigError(Problem("unknown_kind", kind=kind))


class Options:
    """Reads a channel's ``dict[str, str]`` config, refusing what it does not know."""

    def __init__(self, name: str, config: Mapping[str, str], known: Iterable[str]) -> None:
        self.name = name
        self.config = {k: str(v).strip() for k, v in config.items()}
        known = tuple(known)
        for key in self.config:
            if key not in known:
                problem = Problem("unknown_option", name=name, field=key, known=", ".join(known))
                raise ChannelConfigError(problem)

    def text(self, key: str, default: str | None = None) -> str | None:
        """The option, or ``default`` when absent or empty."""
        return self.config.get(key) or default

    def required(self, key: str) -> str:
        """The option; raises ChannelConfigError when absent or empty."""
        value = self.config.get(key)
        if not value:
            raise ChannelConfigError(Problem("missing", name=self.name, field=key))
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A true/false option (true/yes/on/1, false/no/off/0)."""
        value = self.config.get(key)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ChannelConfigError(Problem("bad_bool", name=self.name, field=key, value=value))

    def number(self, key: str, default: float, low: float, high: float) -> float:
        """A number within [low, high]."""
        value = self.config.get(key)
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not low <= number <= high:  # NaN fails too
            problem = Problem(
                "bad_number", name=self.name, field=key, value=value, low=low, high=high
            )
            raise ChannelConfigError(problem)
        return number

    def words(self, key: str) -> list[str]:
        """A comma- or space-separated list."""
        return [w for w in re.split(r"[,\s;]+", self.config.get(key, "")) if w]
