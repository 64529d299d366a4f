"""The Slack Web API client Piyasa uses: slack_sdk's ``AsyncWebClient`` with retries.

Slack answers a rate-limited call with HTTP 429 and a ``Retry-After`` header in seconds
(api.slack.com/apis/rate-limits; ``chat.postMessage`` allows about one message per second
per channel). slack_sdk retries only connection resets by default; here a 429 is retried
after ``Retry-After`` (plus up to a second of jitter, ``AsyncRateLimitErrorRetryHandler``)
up to :data:`RATE_LIMIT_RETRIES` times, unless Slack asks for more than
:data:`MAX_RETRY_AFTER_S`: then the call fails at once with ``ratelimited`` and the user is
told when to try again, instead of a slash command hanging for minutes.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 2
MAX_RETRY_AFTER_S = 30


def retry_after_s(headers: Any) -> int | None:
    """The ``Retry-After`` seconds in a response's headers (any case; slack_sdk gives
    ``{name: [value]}``, aiohttp a plain mapping), or None when absent or not a number."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0, int(str(raw).strip()))
            except ValueError:
                return None
    return None


class BoundedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after its ``Retry-After``, unless that is over ``max_wait_s``."""

    def __init__(
        self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait_s: int = MAX_RETRY_AFTER_S
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_s(response.headers)
        return wait is None or wait <= self.max_wait_s


def retry_handlers() -> list[AsyncRetryHandler]:
    """Rate limits (after ``Retry-After``) and connection resets, in that order."""
    return [
        BoundedRateLimitRetryHandler(max_wait_s=MAX_RETRY_AFTER_S),
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
    ]


def make_client(token: str, base_url: str) -> AsyncWebClient:
    """An ``AsyncWebClient`` for ``token`` on ``base_url`` (``https://slack.com/api/`` or
    a local server) that retries rate-limited and reset calls (see the module docstring)."""
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=retry_handlers())
