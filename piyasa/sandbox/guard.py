"""Who may drive the demo sandbox: the holder of a per-run key, from the same site.

The sandbox lets a visitor type as the demo admin, so its page (`/sandbox` on the web
server) and its JSON API (`/sandbox/api/*`, on both servers) are guarded:

- a per-run key, printed once at start as a link (``/sandbox?key=K``) that sets an
  HttpOnly, SameSite=Strict cookie; API clients send it as ``X-Sandbox-Key``;
- cross-site requests are refused: ``Sec-Fetch-Site`` other than same-origin/none, or an
  ``Origin`` that is not this host (Fetch Metadata and Origin, per OWASP's CSRF sheet);
- on loopback, a ``Host`` that is not a loopback name is refused (DNS rebinding);
- every answer says ``X-Frame-Options: DENY`` and carries a CSP (no framing, own origin
  only), ``nosniff`` and ``Referrer-Policy: same-origin`` (the key never leaves in a Referer).

The Bot API paths (``/bot<token>/...``) are not guarded here: their token is their key.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

PREFIX = "/sandbox"
COOKIE = "piyasa_sandbox"
HEADER = "X-Sandbox-Key"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost`` and the rest of 127.0.0.0/8."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """``[::1]:8080`` -> ``::1``; ``localhost:8080`` -> ``localhost``."""
    return (urlsplit(f"//{host_header}").hostname or "").lower()


class SandboxGuard:
    """The per-run key and the same-site/Host rules, as an aiohttp middleware.

    ``loopback_only``: refuse a ``Host`` header that does not name a loopback address.
    """

    def __init__(self, key: str | None = None, *, loopback_only: bool = True) -> None:
        self.key = key or secrets.token_urlsafe(24)  # 192 bits
        self.loopback_only = loopback_only

    def entry_path(self) -> str:
        """The link to print once at start: it sets the cookie and drops the key."""
        return f"{PREFIX}?key={self.key}"

    def _presented(self, request: web.Request) -> str:
        return request.headers.get(HEADER) or request.cookies.get(COOKIE) or ""

    def site_refusal(self, request: web.Request) -> web.Response | None:
        """The Host and same-site rules: None when ``request`` comes from this site."""
        if self.loopback_only and not is_loopback(_host_name(request.host)):
            return _refuse(421, "unexpected Host header: the sandbox answers on loopback only")
        # Fetch Metadata when the browser sends it (it says "same-origin" even where a
        # referrer policy makes Origin "null"); Origin otherwise.
        site = request.headers.get("Sec-Fetch-Site")
        origin = request.headers.get("Origin")
        if site is not None:
            cross = site not in ("same-origin", "none")
        else:
            cross = origin is not None and (
                origin == "null" or urlsplit(origin).netloc != request.host
            )
        if cross:
            return _refuse(403, "cross-site requests to the sandbox are refused")
        return None

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why ``request`` may not drive the sandbox, as the answer to send; None if it may."""
        if (refused := self.site_refusal(request)) is not None:
            return refused
        given = self._presented(request)
        if not given or not hmac.compare_digest(given.encode(), self.key.encode()):
            return _refuse(
                401,
                "the sandbox needs its key: open the link `piyasa up` printed at start "
                f"(/sandbox?key=…), or send the {HEADER} header",
            )
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != PREFIX and not request.path.startswith(PREFIX + "/"):
            return await handler(request)
        key = request.query.get("key")
        if request.path == PREFIX and request.method == "GET" and key is not None:
            if not hmac.compare_digest(key.encode(), self.key.encode()):
                response = _refuse(401, "this sandbox link is not valid for this run")
            elif (refused := self.site_refusal(request)) is not None:
                response = refused
            else:  # the printed link: set the cookie, show the page without the key in the URL
                response = web.Response(status=303, headers={"Location": PREFIX})
                response.set_cookie(COOKIE, self.key, path=PREFIX, httponly=True, samesite="Strict")
        else:
            response = self.refusal(request) or await handler(request)
        response.headers.update(SECURITY_HEADERS)
        return response


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)
