"""The notification service delivering through configured channel rows to real far ends:
an email at a local SMTP server (aiosmtpd, STARTTLS, text + HTML), a signed webhook at a
local receiver — once each, however often the service ticks (both databases)."""

from __future__ import annotations

import json
from typing import Any

from chatops import i18n
from piyasa.admin.notify import destinations, emit
from piyasa.admin.notify.channels.verify_example import verify
from piyasa.admin.notify.service import NotifyService, default_channel_factory
from tests.notify.channels.conftest import SMTP_PASSWORD, SMTP_USER
from tests.notify.conftest import Clock, critical, resolved
from tests.waiting import until

SECRET = "whsec-service-0123456789"


async def test_an_incident_reaches_email_and_webhook_rows_once(
    services: Any, clock: Clock, smtp_server: Any, tls_files: Any, receiver: Any
) -> None:
    inbox = smtp_server(starttls=True)
    box = await receiver()
    await destinations.add_channel(
        services,
        "ops-mail",
        "email",
        {
            "host": "127.0.0.1",
            "port": str(inbox.port),
            "from": "Piyasa <piyasa@example.test>",
            "to": "ops@example.test",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "ca_file": str(tls_files.cert),
        },
        default_channel_factory,
    )
    await destinations.add_channel(
        services,
        "ops-hook",
        "webhook",
        {"url": f"{box.url}/hook", "secret": SECRET},
        default_channel_factory,
    )
    svc = NotifyService(services, clock=clock, translate=i18n.t, has_key=i18n.has)
    await svc.start(background=False)
    try:
        emit(services.extras, critical("database"))
        await svc.tick()
        await until(lambda: inbox.received, "the alert email at the SMTP server")
        for _ in range(5):  # ticks within the repeat interval send nothing again
            clock.move(60)
            emit(services.extras, critical("database"))
            await svc.tick()
        assert len(inbox.received) == 1 and len(box.requests) == 1

        rcpt, mail, over_tls = inbox.received[0]
        assert rcpt == ["ops@example.test"] and over_tls
        assert mail["Subject"].startswith("[CRITICAL] ")
        assert mail["X-Piyasa-Fingerprint"] == "health:database"
        assert mail.get_content_type() == "multipart/alternative"
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert "#1" in text and "<p>" in html and "#1" in html

        _path, headers, body = box.requests[0]
        assert verify(SECRET, headers["X-Piyasa-Timestamp"], headers["X-Piyasa-Signature"], body)
        sent = json.loads(body)
        assert (sent["severity"], sent["fingerprint"]) == ("critical", "health:database")
        assert "alerts." not in sent["title"]  # words from the catalogue, not keys

        emit(services.extras, resolved(critical("database")))  # the recovery: once more each
        for _ in range(3):
            clock.move(400)
            await svc.tick()
        await until(lambda: len(inbox.received) == 2, "the recovery email")
        assert len(box.requests) == 2
        recovery = json.loads(box.requests[1][2])
        assert recovery["fields"]["state"] == "resolved" and recovery["severity"] == "success"
        lang = services.settings.lang
        title = i18n.t(lang, "alerts.notice.resolved", title="database")  # not "Critical: ..."
        assert inbox.received[1][1]["Subject"] == f"[SUCCESS] {title}"
    finally:
        await svc.stop()
