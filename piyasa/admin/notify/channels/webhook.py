"""Outgoing webhooks: a JSON POST signed with HMAC-SHA256, retried with backoff.

Options: ``url`` (required, http or https), ``secret`` (required, shared with the
receiver), ``timeout`` (seconds per request, default 10), ``retries`` (extra attempts after a
5xx, a 429 or a connection failure, default 3), ``backoff_s`` (first wait, doubled each time,
default 1), ``max_wait_s`` (the longest wait done here, default 30: a longer ``Retry-After``
is handed back to the outbox as ``retry_after_s`` instead of holding a worker).

Each request carries ``X-Piyasa-Timestamp`` (Unix seconds, fresh per attempt) and
``X-Piyasa-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`` over the exact
body bytes; ``verify_example.py`` is the receiver's check, shown in docs/notifications.md.
A 2xx is delivered; 5xx and 429 are retried (``Retry-After`` in seconds or as an HTTP date
is honoured); any other status is permanent. Neither the URL (it may hold a token) nor the
secret appears in an error or a log: only the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from piyasa.admin.notify.channels.base import DeliveryError, Options, OutgoingMessage
from piyasa.admin.notify.channels.problems import ChannelConfigError, Problem
from piyasa.logs import REDACTOR

OPTIONS = ("url", "secret", "timeout", "retries", "backoff_s", "max_wait_s")
SIGNATURE_VERSION = "v1"
USER_AGENT = "Piyasa-Webhook/1"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Piyasa-Signature`` value: ``v1=`` + hex HMAC-SHA256 of ``timestamp.body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def payload(message: OutgoingMessage) -> bytes:
    """The JSON body for ``message`` (UTF-8, compact, keys sorted)."""
    data = {
        "version": 1,
        "title": message.title,
        "text": message.body_text,
        "severity": message.severity,
        "fingerprint": message.fingerprint,
        "source": message.source,
        "link": message.link,
        "fields": dict(message.fields),
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def retry_after_s(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class WebhookChannel:
    """POSTs each notification as signed JSON to one URL."""

    kind = "webhook"

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_wait_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        REDACTOR.add(url, secret)  # the URL may carry a token; neither is ever logged
        parts = urlsplit(url)
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = timeout
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.sleep = sleep

    def __repr__(self) -> str:  # never the URL's path or the secret
        return f"WebhookChannel({self.name!r}, host={self.host})"

    @classmethod
    def from_config(cls, name: str, config: dict[str, str], **kwargs: object) -> WebhookChannel:
        """Raises ChannelConfigError for a URL that is not http(s) or has no host, or a
        missing secret. ``kwargs`` (``clock``, ``sleep``) are for tests that move time."""
        opts = Options(name, config, OPTIONS)
        url = opts.required("url")
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            raise ChannelConfigError(Problem("bad_url_scheme", name=name, scheme=parts.scheme))
        if not parts.hostname:
            raise ChannelConfigError(Problem("bad_url_host", name=name))
        return cls(
            name,
            url=url,
            secret=opts.required("secret"),
            timeout=opts.number("timeout", 10.0, 0.1, 300.0),
            retries=int(opts.number("retries", 3, 0, 10)),
            backoff_s=opts.number("backoff_s", 1.0, 0.0, 600.0),
            max_wait_s=opts.number("max_wait_s", 30.0, 0.0, 3600.0),
            **kwargs,  # type: ignore[arg-type]
        )

    async def check(self) -> list[str]:
        """Opens a TCP connection to the URL's host and port (nothing is posted): [] when
        it answers, else the reason it cannot be reached."""
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            error = "connection refused" if isinstance(exc, ConnectionRefusedError) else str(exc)
            error = error or f"no answer within {self.timeout:g} s"
            return [
                Problem("unreachable", host=self.host, port=self.port, name=self.name, error=error)
            ]
        writer.close()
        await writer.wait_closed()
        return []

    async def send(self, message: OutgoingMessage) -> None:
        """POSTs ``message``, retrying 5xx, 429 and connection failures ``retries`` times.

        Raises DeliveryError: ``permanent`` for any other non-2xx status; otherwise with
        ``retry_after_s`` (the server's ``Retry-After``, or the next backoff) once retries
        are spent or the server asks for a wait longer than ``max_wait_s``.
        """
        import aiohttp

        body = payload(message)
        attempt = 0
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                stamp = str(int(self.clock()))
                headers = {
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": USER_AGENT,
                    "X-Piyasa-Timestamp": stamp,
                    "X-Piyasa-Signature": sign(self._secret, stamp, body),
                }
                wait: float | None = None
                try:
                    async with session.post(
                        self._url, data=body, headers=headers, allow_redirects=False
                    ) as response:
                        status = response.status
                        wait = retry_after_s(response.headers.get("Retry-After"), self.clock())
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    status = 0
                    error = str(exc) or type(exc).__name__
                    problem = Problem(
                        "unreachable", host=self.host, port=self.port, name=self.name, error=error
                    )
                if 200 <= status < 300:
                    return
                if status and status != 429 and status < 500:
                    problem = Problem("http_refused", host=self.host, status=status)
                    raise DeliveryError(problem, permanent=True)
                if status:
                    problem = Problem("http_status", host=self.host, status=status)
                attempt += 1
                if wait is None:
                    wait = self.backoff_s * 2 ** (attempt - 1)
                if attempt > self.retries or wait > self.max_wait_s:
                    raise DeliveryError(problem, retry_after_s=wait)
                await self.sleep(wait)
