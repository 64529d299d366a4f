"""A local SMTP server that keeps what it accepts: the far end of the email channel in
benchmarks and demos, so nothing leaves the machine.

:class:`Mailbox` runs aiosmtpd's ``Controller`` (its own thread and event loop) on
127.0.0.1 without TLS or AUTH, and records each accepted message with the
``time.perf_counter()`` of its arrival, its envelope recipients and the parsed headers.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class Received:
    """One accepted message: when (``perf_counter`` seconds), to whom, what."""

    at: float
    recipients: tuple[str, ...]
    message: EmailMessage


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """An aiosmtpd server on ``127.0.0.1:port`` recording every message (thread-safe)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd's hook for the DATA command: keep the message, answer 250."""
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        entry = Received(time.perf_counter(), tuple(envelope.rcpt_tos), message)  # type: ignore[arg-type]
        with self._lock:
            self.received.append(entry)
        return "250 OK"

    def start(self) -> Mailbox:
        """Listen on a free port (``self.port``); returns self."""
        from aiosmtpd.controller import Controller

        self.port = self.port or _free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Received]:
        """The messages with ``address`` among their envelope recipients."""
        with self._lock:
            return [r for r in self.received if address in r.recipients]
