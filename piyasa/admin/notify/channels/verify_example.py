"""How a receiver verifies a Piyasa webhook (docs/notifications.md shows this file).

Copy it into the service that receives the webhooks. It needs only the standard library.
"""

import hashlib
import hmac
import time

MAX_AGE_S = 300  # refuse requests older (or newer) than 5 minutes: a replayed capture


def verify(
    secret: str, timestamp: str, signature: str, body: bytes, now: float | None = None
) -> bool:
    """True when ``signature`` (the X-Piyasa-Signature header) signs ``body`` (the raw
    request body, before any JSON parsing) at ``timestamp`` (the X-Piyasa-Timestamp
    header, Unix seconds) with ``secret``, and the timestamp is within 5 minutes of now."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > MAX_AGE_S:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
