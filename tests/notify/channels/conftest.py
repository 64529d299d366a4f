"""Local servers the channels talk to: a real SMTP server (aiosmtpd) with STARTTLS on a
self-signed certificate made here, and aiohttp receivers for webhooks and Apprise."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from piyasa.bench._procs import free_port

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "correct-horse-battery"


@dataclass
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


@pytest.fixture
def tls_files(tmp_path: Path) -> TLSFiles:
    """A self-signed certificate for 127.0.0.1 and localhost (also its own CA bundle)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "piyasa-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TLSFiles(cert_path, key_path)


@dataclass
class Inbox:
    """What the SMTP server accepted: (envelope recipients, parsed message, over TLS)."""

    port: int
    received: list[tuple[list[str], EmailMessage, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message, session.ssl is not None))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # False: the server answers 535 itself


@pytest.fixture
def smtp_server(tls_files: TLSFiles) -> Iterator[Callable[..., Inbox]]:
    """Starts aiosmtpd servers on 127.0.0.1: ``smtp_server(starttls=True)`` offers
    STARTTLS and AUTH (after TLS) with :data:`SMTP_USER` / :data:`SMTP_PASSWORD`;
    ``starttls=False`` offers neither."""
    controllers: list[Controller] = []

    def start(starttls: bool = True) -> Inbox:
        inbox = Inbox(free_port())
        kwargs: dict[str, Any] = {}
        if starttls:
            kwargs = {
                "tls_context": tls_files.server_context(),
                "require_starttls": True,
                "authenticator": _authenticate,
                "auth_require_tls": True,
            }
        controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, **kwargs)
        controller.start()
        controllers.append(controller)
        return inbox

    yield start
    for controller in controllers:
        controller.stop()


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 that records every request and answers from a script
    (``replies``: (status, headers) used in order, then 200)."""

    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    judge: Callable[[dict[str, str], bytes], int] | None = None


@pytest.fixture
async def receiver() -> AsyncIterator[Callable[..., Any]]:
    """``await receiver(ssl_context=None)`` starts one; all stop at the end of the test."""
    runners: list[web.AppRunner] = []

    async def start(ssl_context: ssl.SSLContext | None = None) -> Receiver:
        port = free_port()
        scheme = "https" if ssl_context else "http"
        box = Receiver(f"{scheme}://127.0.0.1:{port}")

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            headers = dict(request.headers)
            box.requests.append((request.path_qs, headers, body))
            if box.replies:
                status, extra = box.replies.pop(0)
                return web.Response(status=status, headers=extra)
            status = box.judge(headers, body) if box.judge else 200
            return web.Response(status=status, text="{}", content_type="application/json")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
        runners.append(runner)
        return box

    yield start
    for runner in runners:
        await runner.cleanup()
