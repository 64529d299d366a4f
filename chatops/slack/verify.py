"""Slack request verification, before slack-bolt sees a byte of the body.

Slack signs every request: ``X-Slack-Signature`` = ``v0=`` + hex HMAC-SHA256(signing
secret, ``v0:{X-Slack-Request-Timestamp}:{raw body}``), and asks apps to refuse timestamps
more than five minutes from now ("Verifying requests from Slack", api.slack.com/authentication
/verifying-requests-from-slack). Bolt checks the same, but only after it has parsed the body
(an unsigned ``payload=`` that is not JSON makes it answer 500), so the check runs here
first: an unsigned, badly signed or stale request is refused with 401 and its body is
neither parsed nor logged.

A signed request replays for as long as its timestamp is fresh. Each accepted signature is
remembered for :data:`SEEN_TTL_S` (long enough to outlive any timestamp Slack's window
accepts) and a second request with it is refused: in Redis (``SET NX`` with a TTL, shared
by every instance) when the cache is Redis, in a bounded in-process map otherwise. Replays
are logged (never the body) and audited.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger(__name__)
WINDOW_S = 300  # Slack: refuse timestamps more than five minutes from now
SEEN_TTL_S = 2 * WINDOW_S  # a timestamp up to WINDOW_S ahead stays fresh this long
SEEN_PREFIX = "slack:seen:"
LOCAL_MAX = 100_000  # signatures held in process; the oldest go first (about 10 MB)


class SeenSignatures:
    """A bounded map of signature -> expiry (monotonic seconds), for one process.

    Every entry has the same TTL, so insertion order is expiry order: expired entries are
    dropped from the front, and when ``max_size`` is reached the oldest goes first.
    """

    def __init__(
        self,
        ttl_s: float = SEEN_TTL_S,
        max_size: int = LOCAL_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_size, self._clock = ttl_s, max_size, clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, signature: str) -> bool:
        """Remember ``signature``; False when it was already seen and has not expired."""
        now = self._clock()
        while self._expiry:
            oldest, expiry = next(iter(self._expiry.items()))
            if expiry > now and len(self._expiry) < self.max_size:
                break
            del self._expiry[oldest]
        if signature in self._expiry:
            return False
        self._expiry[signature] = now + self.ttl_s
        return True


class RequestGuard:
    """Checks signature, timestamp and replay of requests to the Slack events route.

    ``cache`` is ``services.cache``: when it is Redis, seen signatures live there (shared
    by every instance); otherwise, and while Redis fails, in a :class:`SeenSignatures`.
    ``on_replay(timestamp)`` is awaited for every refused replay (the audit row).
    """

    def __init__(
        self,
        signing_secret: str,
        cache: Any = None,
        *,
        on_replay: Callable[[str], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = signing_secret.encode()
        self._cache = cache if getattr(cache, "kind", "") == "redis" else None
        self._local = SeenSignatures()
        self._on_replay = on_replay
        self._clock = clock

    def _refuse(self, why: str) -> web.HTTPUnauthorized:
        log.info("slack request refused (401): %s", why)
        return web.HTTPUnauthorized(text="invalid request", content_type="text/plain")

    async def verified_body(self, request: web.Request) -> bytes:
        """The raw body of a request Slack signed within the window, seen for the first
        time. Raises ``web.HTTPUnauthorized`` (401) otherwise, and 413 (from aiohttp's
        ``client_max_size``) for a body over the app's limit. Headers are checked before
        the body is read; the body is never logged."""
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise self._refuse("no signature headers")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise self._refuse("malformed timestamp")
        if abs(self._clock() - int(timestamp)) > WINDOW_S:
            raise self._refuse("timestamp outside the five-minute window")
        body = await request.read()
        base = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode(errors="replace")):
            raise self._refuse("bad signature")
        if not await self._first_time(expected):
            log.warning("slack request refused (401): replayed signature (timestamp %s)", timestamp)
            if self._on_replay is not None:
                try:
                    await self._on_replay(timestamp)
                except Exception as exc:  # the refusal stands without its audit row
                    log.warning("slack replay not audited: %s", type(exc).__name__)
            raise web.HTTPUnauthorized(text="invalid request", content_type="text/plain")
        return body

    async def _first_time(self, signature: str) -> bool:
        if self._cache is not None:
            try:
                return bool(await self._cache.add(SEEN_PREFIX + signature, 1, ttl=SEEN_TTL_S))
            except Exception as exc:  # Redis away: this process still refuses its own replays
                log.warning("slack replay check on the local map: %s", type(exc).__name__)
        return self._local.add(signature)


async def verified_bolt_request(guard: RequestGuard, request: web.Request) -> AsyncBoltRequest:
    """What ``slack_bolt.adapter.aiohttp.to_bolt_request`` builds, from a verified body
    only (raises as :meth:`RequestGuard.verified_body` does)."""
    body = await guard.verified_body(request)
    try:
        return AsyncBoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
    except ValueError:  # signed, but no JSON where Slack puts JSON: not from Slack's apps
        log.info("slack request refused (400): a signed body that does not parse")
        raise web.HTTPBadRequest(text="malformed request", content_type="text/plain") from None
