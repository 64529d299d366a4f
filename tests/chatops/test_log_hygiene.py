"""Issue 11, item 7: with PIYASA_LOG_LEVEL=DEBUG no log line carries a secret or a request
body, and a body over 1 MiB is refused (413) before it is read.

The order is `piyasa up`'s: logging is set up from the settings first, then the Slack
surface is built (slack-bolt copies the root level into its loggers when they are made).
Every handler on the root logger is searched, pytest's own included, plus the log ring
that the /health log download reads.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pyotp
import pytest

from chatops.web.boot import MAX_BODY_BYTES
from piyasa.admin import passwords
from piyasa.admin.users import link_code_for
from piyasa.config import load_settings
from piyasa.logs import RING, setup_logging
from tests.chatops.conftest import start_slack
from tests.chatops.harness import with_admin_settings
from tests.chatops.slack_server import dm_of, sign, slack_text
from tests.users.helpers import slack_tap, slack_upload
from tests.web.rawhttp import status_before_body

BIG = 1_900_000  # the size of the bodies in the report: under the old 2 MiB limit


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: what is logged does not depend on the database backend."""
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@contextmanager
def debug_logging(
    tmp_path: Path, secrets: list[str] | None = None
) -> Iterator[Callable[[], dict[str, str]]]:
    """Logging as `piyasa up` sets it from PIYASA_LOG_LEVEL=DEBUG; yields a function that
    returns what every handler on the root logger wrote, and the ring (``secrets``: the
    configured secrets `piyasa up` gives the redactor; the secret key by default). Stream handlers
    writing elsewhere (stderr) are pointed at buffers; pytest's own handlers write to
    buffers already (renewed per test phase, so they are read where they are). Levels of
    every logger are restored afterwards."""
    env = {"PIYASA_DATA_DIR": str(tmp_path / "logcfg"), "PIYASA_LOG_LEVEL": "DEBUG"}
    settings = load_settings(env)
    assert settings.log_level == "DEBUG"
    manager = logging.Logger.manager
    saved = {n: lg.level for n, lg in manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    root = logging.getLogger()
    saved_root = root.level
    setup_logging(settings.log_level, secrets or [settings.secret_key.reveal()])
    assert logging.getLogger("piyasa").isEnabledFor(logging.DEBUG)
    swapped: list[tuple[logging.StreamHandler, object]] = []
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler.stream, io.StringIO
        ):
            # not setStream: it flushes the old stream, which an earlier test may have closed
            swapped.append((handler, handler.stream))
            handler.stream = io.StringIO()
    RING.lines.clear()

    def outputs() -> dict[str, str]:
        found = {"ring": "\n".join(RING.lines)}
        for i, handler in enumerate(root.handlers):
            if handler is RING or type(handler).emit is logging.NullHandler.emit:
                continue
            stream = getattr(handler, "stream", None)
            assert isinstance(stream, io.StringIO), (
                f"a handler writes where we cannot read: {handler}"
            )
            found[f"{type(handler).__name__}#{i}"] = stream.getvalue()
        return found

    try:
        yield outputs
    finally:
        for handler, stream in swapped:
            handler.stream = stream
        root.setLevel(saved_root)
        for name, level in saved.items():
            logger = manager.loggerDict.get(name)
            if isinstance(logger, logging.Logger):
                logger.setLevel(level)


@pytest.fixture
async def debug_slack(services, people, slack_server, tmp_path) -> AsyncIterator:  # type: ignore[no-untyped-def]
    with debug_logging(tmp_path) as outputs:
        with_admin_settings(services, "http://127.0.0.1:9")
        async for client, _surface in start_slack(services, slack_server):
            client.log_outputs = outputs
            yield client


def hits(outputs: dict[str, str], secrets: dict[str, str]) -> list[str]:
    return [f"{what} in {where}" for where, text in outputs.items() for what, value in
            secrets.items() if value in text]  # fmt: skip


async def test_debug_logs_never_carry_the_secrets_a_slack_session_shows(
    debug_slack, slack_server
) -> None:
    slack = debug_slack
    # a link code sent to an admin (in a DM), then redeemed by a stranger (request body)
    await slack.slash("U0ADMIN", "linkcode user_viewer")
    code = next(
        line.strip("`") for line in slack_text(_dm(slack_server)).splitlines() if "```" in line
    )
    operator_code = await link_code_for(slack.services, "user_operator")
    _, ack, _ = await slack.slash(
        "U0STRANGER", f"link {operator_code}", channel=dm_of("U0STRANGER")
    )
    assert "user_operator" in slack_text(ack)
    # a temporary password, answered through response_url
    _, ack, _ = await slack.slash("U0ADMIN", "users operator")
    card = await slack_tap(slack, slack_server, "U0ADMIN", ack, "👤 user_operator")
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", card, "Reset password")
    await slack_tap(slack, slack_server, "U0ADMIN", confirm, "Yes")
    temp = next(
        b["text"]["text"].strip("`")
        for b in _dm(slack_server)["blocks"]
        if "```" in (b.get("text") or {}).get("text", "")
    )
    assert (await passwords.check_login(slack.services, "user_operator", temp)).must_change
    # a TOTP seed: the QR goes to the DM through the Web API, confirmed with a code
    _, ack, _ = await slack.slash("U0VIEWER", "mfa", channel=dm_of("U0VIEWER"))
    await slack_upload(slack_server, "piyasa-2fa.png")
    seed = await _pending_seed(slack.services, "user_viewer")
    _, ack, _ = await slack.slash(
        "U0VIEWER", f"mfa {pyotp.TOTP(seed).now()}", channel=dm_of("U0VIEWER")
    )
    assert "is on" in slack_text(ack)
    # and a request with a bad signature whose body holds a secret-looking text
    marker = f"unsigned-{uuid.uuid4().hex}"
    status, _, _ = await slack.slash("U0ADMIN", f"link {marker}", secret="not-the-secret")
    assert status == 401

    # the handlers did capture at DEBUG: Piyasa's own debug line is in every output
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    logging.getLogger("piyasa.test.hygiene").debug("capturing: %s", sentinel)
    outputs = slack.log_outputs()
    missing = [where for where, text in outputs.items() if sentinel not in text]
    assert not missing, missing
    secrets = {"link code": code, "redeemed code": operator_code, "temp password": temp,
               "totp seed": seed, "unsigned body": marker}  # fmt: skip
    assert not hits(outputs, secrets)


def _dm(slack_server, user: str = "U0ADMIN") -> dict:  # type: ignore[no-untyped-def]
    """The app's last direct message to ``user`` (U0ADMIN -> D0ADMIN): where secrets go."""
    return [m for m in slack_server.posted if m["channel"] == "D" + user[1:]][-1]


async def _pending_seed(services, username: str) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from piyasa.db.models import User

    async with services.sessions() as s:
        enc = await s.scalar(select(User.totp_secret_encrypted).where(User.username == username))
    return services.box.decrypt(enc)


def _bad_signature_headers(body: bytes) -> dict[str, str]:
    return sign("not-the-signing-secret", body[:64].decode())


async def test_big_unsigned_bodies_are_refused_unread_and_never_logged(debug_slack) -> None:
    slack = debug_slack
    marker = f"BODY-{uuid.uuid4().hex}-"
    body = ("command=%2Fpiyasa&text=" + marker * (BIG // len(marker) + 1))[:BIG].encode()
    outputs = slack.log_outputs
    before = sum(len(text) for text in outputs().values())
    statuses = []
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            async with http.post(
                slack.url, data=body, headers=_bad_signature_headers(body)
            ) as resp:
                await resp.read()
                assert resp.status == 413, f"request {len(statuses) + 1}: {resp.status}"
                statuses.append(resp.status)

        # a chunked body has no length up front: refused once it grows past the limit
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY_BYTES // 65536 + 8):
                yield (marker * (65536 // len(marker) + 1))[:65536].encode()

        async with http.post(
            slack.url, data=chunks(), headers=_bad_signature_headers(body)
        ) as resp:
            chunked_status = resp.status
        # a small unsigned body is read (its signature needs it), refused, and not logged
        small = body[:4096]
        async with http.post(slack.url, data=small, headers=_bad_signature_headers(small)) as resp:
            small_status = resp.status
    assert len(statuses) == 100
    assert chunked_status == 413 and small_status == 401
    assert MAX_BODY_BYTES == 1024 * 1024
    # refused before the body is read: the answer comes while most of it was never sent
    head = body[:65536]
    assert await status_before_body(slack.url, BIG, head, _bad_signature_headers(head)) == 413

    after = outputs()
    assert not [where for where, text in after.items() if marker in text]
    growth = sum(len(text) for text in after.values()) - before
    assert growth < 64 * 1024, f"the log grew by {growth} characters for refused requests"
