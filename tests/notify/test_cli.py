"""`piyasa alerts list|ack|silence|test|channel` as a real process on the test database
(both backends): what the shell shows, channels that reach a real SMTP server and a real
webhook receiver, and bad input refused with the fix and nothing changed."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from piyasa.admin.notify import store as notify_store
from piyasa.admin.notify.channels.verify_example import verify
from piyasa.admin.notify.service import NotifyService
from piyasa.bench._procs import free_port
from piyasa.config import load_settings
from piyasa.services import Services
from tests.e2e.procs import base_env
from tests.notify.channels.conftest import SMTP_PASSWORD, SMTP_USER
from tests.notify.conftest import critical
from tests.waiting import finishes, until

pytestmark = pytest.mark.e2e
SECRET = "whsec-test-0123456789"


@dataclass
class Shell:
    """`piyasa` processes on one database, and that database from the test's side."""

    env: dict[str, str]

    async def run(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "piyasa.cli",
            *args,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await finishes(
                proc.communicate(stdin.encode()), f"`piyasa {' '.join(args)}` to exit"
            )
        except AssertionError:
            proc.kill()
            await proc.wait()
            raise
        return proc.returncode or 0, out.decode(), err.decode()

    async def ok(self, *args: str, stdin: str = "") -> str:
        code, out, err = await self.run(*args, stdin=stdin)
        assert code == 0, f"`piyasa {' '.join(args)}` exited {code}: {err}"
        return out

    async def refused(self, *args: str, stdin: str = "") -> str:
        code, _out, err = await self.run(*args, stdin=stdin)
        assert code == 2, f"`piyasa {' '.join(args)}` exited {code}, not refused: {err}"
        assert "nothing was changed" in err, err
        return err

    def services(self) -> Services:
        return Services.build(load_settings(self.env))

    async def incident(self) -> None:
        """One critical incident in the database, stored by a notification service."""
        services = self.services()
        svc = NotifyService(services)
        try:
            await svc.ingest(critical("database"))
        finally:
            await services.close()

    async def channels(self) -> list[dict[str, Any]]:
        return json.loads(await self.ok("alerts", "channel", "list", "--json"))


@pytest.fixture
async def shell(db_url: str, tmp_path: Path) -> AsyncIterator[Shell]:
    env = base_env(tmp_path / "data", PIYASA_DATABASE_URL=db_url, PIYASA_LANG="en")
    sh = Shell(env)
    await sh.ok("migrate")
    yield sh


async def test_list_ack_and_silence(shell: Shell) -> None:
    await shell.incident()
    data = json.loads(await shell.ok("alerts", "list", "--json"))
    assert [(i["id"], i["state"], i["fingerprint"]) for i in data["items"]] == [
        (1, "open", "health:database")
    ]
    assert "#1 acknowledged" in await shell.ok("alerts", "ack", "1")
    assert "acknowledged" in await shell.ok("alerts", "list", "--state", "acked")
    assert "no open incidents" in await shell.ok("alerts", "list")
    out = await shell.ok("alerts", "silence", "--match", "source=fleet", "--for", "2h")
    assert "silence #1: source=fleet until" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--for", "2h"], "at least one matcher"), (["--match", "source=fleet"], "needs an expiry")],
)
async def test_bad_silence_is_refused(shell: Shell, args: list[str], says: str) -> None:
    assert says in await shell.refused("alerts", "silence", *args)
    services = shell.services()
    try:
        from datetime import UTC, datetime

        assert await notify_store.silences(services, datetime.now(UTC)) == []
    finally:
        await services.close()


async def test_ack_of_nothing_and_test_of_unknown_channel(shell: Shell) -> None:
    assert "no notification #9" in await shell.refused("alerts", "ack", "9")
    assert "no channel named 'nope'" in await shell.refused("alerts", "test", "--channel", "nope")


async def test_a_webhook_channel_is_added_tested_and_removed(shell: Shell, receiver: Any) -> None:
    box = await receiver()
    out = await shell.ok(
        "alerts",
        "channel",
        "add",
        "ops-hook",
        "webhook",
        f"url={box.url}/hook",
        "--secret-stdin",
        "secret",
        "--json",
        stdin=SECRET + "\n",
    )
    assert json.loads(out)["config"] == {"url": "****", "secret": "****"}
    listed = await shell.channels()
    assert [(c["name"], c["kind"], c["enabled"]) for c in listed] == [("ops-hook", "webhook", True)]
    assert SECRET not in json.dumps(listed) and box.url not in json.dumps(listed)

    assert "test notification sent to ops-hook" in await shell.ok(
        "alerts", "test", "--channel", "ops-hook"
    )
    assert len(box.requests) == 1  # the CLI waited for the receiver's answer
    path, headers, body = box.requests[0]
    assert path == "/hook"
    assert verify(SECRET, headers["X-Piyasa-Timestamp"], headers["X-Piyasa-Signature"], body)
    assert json.loads(body)["title"] == "Piyasa test notification"

    assert "channel ops-hook removed" in await shell.ok("alerts", "channel", "remove", "ops-hook")
    assert await shell.channels() == []
    err = await shell.refused("alerts", "channel", "remove", "ops-hook")
    assert "no channel named 'ops-hook'" in err


async def test_an_email_channel_reaches_the_smtp_server(
    shell: Shell, smtp_server: Any, tls_files: Any
) -> None:
    inbox = smtp_server(starttls=True)
    await shell.ok(
        "alerts",
        "channel",
        "add",
        "ops-mail",
        "email",
        "host=127.0.0.1",
        f"port={inbox.port}",
        "from=Piyasa <piyasa@example.test>",
        "to=ops@example.test",
        f"username={SMTP_USER}",
        f"ca_file={tls_files.cert}",
        "--secret-stdin",
        "password",
        stdin=SMTP_PASSWORD + "\n",
    )
    assert inbox.received == []  # checking the server sends nothing
    await shell.ok("alerts", "test", "--channel", "ops-mail")
    await until(lambda: inbox.received, "the test email at the SMTP server")
    rcpt, mail, over_tls = inbox.received[0]
    assert rcpt == ["ops@example.test"] and over_tls
    assert mail["Subject"] == "[INFO] Piyasa test notification"
    assert len(inbox.received) == 1


async def test_channels_that_cannot_work_are_refused_with_the_fix(shell: Shell) -> None:
    port = free_port()  # nothing listens there
    err = await shell.refused(
        "alerts",
        "channel",
        "add",
        "ops-mail",
        "email",
        "host=127.0.0.1",
        f"port={port}",
        "from=piyasa@example.test",
        "to=ops@example.test",
        "starttls=false",
    )
    assert f"cannot reach 127.0.0.1:{port}" in err
    assert "check the host and port of channel ops-mail" in err
    for url in ("ftp://example.test/hook", "file:///etc/passwd"):
        err = await shell.refused(
            "alerts", "channel", "add", "hook", "webhook", f"url={url}", f"secret={SECRET}"
        )
        assert "must start with http:// or https://" in err
        assert SECRET not in err
    err = await shell.refused("alerts", "channel", "add", "hook", "webhook", "http://x")
    assert "is not OPTION=VALUE" in err
    assert await shell.channels() == []
