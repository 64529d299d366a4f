"""Email reaches a real SMTP server (aiosmtpd) over STARTTLS with a login, as text and HTML;
a wrong password, a closed port and a server without STARTTLS are said exactly, at
configuration time, and nothing is sent."""

from __future__ import annotations

from typing import Any

import pytest

from piyasa.admin.notify.channels import DeliveryError, OutgoingMessage, build_channel
from piyasa.bench._procs import free_port
from tests.notify.channels.conftest import SMTP_PASSWORD, SMTP_USER, TLSFiles
from tests.waiting import until

MESSAGE = OutgoingMessage(
    title="Redis unreachable",
    body_text="Redis has not answered for 2 minutes.",
    body_html="<p>Redis has <b>not answered</b> for 2 minutes.</p>",
    severity="critical",
    fingerprint="health:redis",
    source="health",
    link="http://127.0.0.1:8080/",
    fields={"component": "redis"},
)


def config(port: int, tls: TLSFiles, **extra: str) -> dict[str, str]:
    return {
        "host": "127.0.0.1",
        "port": str(port),
        "from": "Piyasa <piyasa@example.test>",
        "to": "ops@example.test, oncall@example.test",
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        "ca_file": str(tls.cert),
        **extra,
    }


async def test_sends_text_and_html_over_starttls(smtp_server: Any, tls_files: TLSFiles) -> None:
    inbox = smtp_server(starttls=True)
    channel = build_channel("email", "ops-mail", config(inbox.port, tls_files))
    assert await channel.check() == []

    await channel.send(MESSAGE)

    await until(lambda: inbox.received, "the email at the SMTP server")
    rcpt, mail, over_tls = inbox.received[0]
    assert over_tls
    assert rcpt == ["ops@example.test", "oncall@example.test"]
    assert mail["Subject"] == "[CRITICAL] Redis unreachable"
    assert mail["X-Piyasa-Severity"] == "critical"
    assert mail["X-Piyasa-Fingerprint"] == "health:redis"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Redis has not answered for 2 minutes." in text
    assert "component: redis" in text and "http://127.0.0.1:8080/" in text
    assert "<b>not answered</b>" in html
    assert len(inbox.received) == 1


async def test_text_only_without_html(smtp_server: Any, tls_files: TLSFiles) -> None:
    inbox = smtp_server(starttls=False)
    cfg = config(inbox.port, tls_files, starttls="false")
    del cfg["username"], cfg["password"]
    channel = build_channel("email", "plain", cfg)
    await channel.send(
        OutgoingMessage("Backup done", "Nightly backup verified.", None, "success", "b", "backup")
    )
    await until(lambda: inbox.received, "the email at the SMTP server")
    _, mail, _ = inbox.received[0]
    assert mail.get_content_type() == "text/plain"
    assert mail["Subject"] == "[SUCCESS] Backup done"
    assert "Nightly backup verified." in mail.get_content()


async def test_wrong_password_is_said_and_nothing_sent(
    smtp_server: Any, tls_files: TLSFiles
) -> None:
    inbox = smtp_server(starttls=True)
    channel = build_channel(
        "email", "ops-mail", config(inbox.port, tls_files, password="wrong-password-123")
    )
    problems = await channel.check()
    assert [p.key for p in problems] == ["auth_failed"]
    assert f"refused the login of {SMTP_USER}" in problems[0]
    assert "wrong-password-123" not in problems[0]
    with pytest.raises(DeliveryError) as caught:
        await channel.send(MESSAGE)
    assert caught.value.permanent
    assert inbox.received == []


async def test_unreachable_host_is_said_with_the_fix(tls_files: TLSFiles) -> None:
    port = free_port()  # nothing listens there
    channel = build_channel("email", "ops-mail", config(port, tls_files))
    problems = await channel.check()
    assert problems == [
        f"cannot reach 127.0.0.1:{port}: connection refused — check the host and port of "
        "channel ops-mail, and that the server is running"
    ]
    with pytest.raises(DeliveryError) as caught:
        await channel.send(MESSAGE)
    assert not caught.value.permanent  # the server may come back: the outbox retries


async def test_server_without_starttls_is_refused(smtp_server: Any, tls_files: TLSFiles) -> None:
    inbox = smtp_server(starttls=False)
    channel = build_channel("email", "ops-mail", config(inbox.port, tls_files))
    problems = await channel.check()
    assert [p.key for p in problems] == ["starttls_missing"]
    assert "does not offer STARTTLS" in problems[0]
    with pytest.raises(DeliveryError) as caught:
        await channel.send(MESSAGE)
    assert caught.value.permanent
    assert inbox.received == []  # the password never crossed in clear


async def test_untrusted_certificate_is_refused(smtp_server: Any, tls_files: TLSFiles) -> None:
    inbox = smtp_server(starttls=True)
    cfg = config(inbox.port, tls_files)
    del cfg["ca_file"]  # the self-signed certificate is not in the system's bundle
    problems = await build_channel("email", "ops-mail", cfg).check()
    assert [p.key for p in problems] == ["tls_failed"]
