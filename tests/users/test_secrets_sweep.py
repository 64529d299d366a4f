"""Issue 11, "secrets sweep": every secret-producing action, on Telegram and on Slack, at
DEBUG log level, with recognisable secrets; then every place a secret could end up is
searched: the data dir (database files included), every log handler and the log ring, the
audit table, the chat transcripts, ``/api/health``, ``/metrics`` and the status page.

A secret may be seen in exactly one place: the private message that hands it to its owner
(a link code, a temporary password, an API key, the TOTP seed's QR caption). A secret the
user typed (a password, a link code being redeemed, a TOTP code) may be seen nowhere once
the bot handled it: the message is deleted. Configured secrets (tokens, the signing
secret, the secret key) are seen nowhere at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest
from sqlalchemy import select

from piyasa.admin import auth
from piyasa.admin import users as svc
from piyasa.admin.health import HealthService
from piyasa.admin.setup.codes import create_setup_code
from piyasa.admin.users import link_code_for
from piyasa.config import SECRET_KEY_FILE_NAME
from piyasa.db.models import AuditEntry, User
from tests.chatops.conftest import start_slack, start_telegram
from tests.chatops.harness import ADMIN_GROUP, PEOPLE, with_admin_settings
from tests.chatops.slack_server import BOT_TOKEN, SIGNING_SECRET, dm_of, slack_text
from tests.chatops.test_log_hygiene import debug_logging
from tests.users.helpers import slack_answer, slack_tap, slack_token, slack_upload, tap

OLD = f"old-passphrase-{uuid.uuid4().hex[:12]}"
NEW = f"new-passphrase-{uuid.uuid4().hex[:12]}"
SLACK_NEW = f"slack-passphrase-{uuid.uuid4().hex[:12]}"
SLACK_TYPED = f"typed-in-modal-{uuid.uuid4().hex[:12]}"
NEWCOMER = 810099  # a Telegram user who gets a first admin's setup code


@pytest.fixture
async def world(services, people, slack_server, tmp_path) -> AsyncIterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Telegram and Slack on one service container, logging as `piyasa up` at DEBUG, the
    status routes mounted: what an operator's install would run."""
    services.extras["health"] = HealthService(services, probes=[], record_stop=False)
    with debug_logging(tmp_path, secrets=_configured(services)) as outputs:
        async for tg in start_telegram(services):
            async for slack, _surface in start_slack(services, slack_server):
                with_admin_settings(services, tg.sb.base_url)
                yield {"tg": tg, "slack": slack, "outputs": outputs, "server": slack_server}


def _configured(services) -> list[str]:  # type: ignore[no-untyped-def]
    from tests.chatops.harness import ADMIN_BOT_TOKEN

    return [ADMIN_BOT_TOKEN, BOT_TOKEN, SIGNING_SECRET, services.settings.secret_key.reveal()]


async def _seed(services) -> None:  # type: ignore[no-untyped-def]
    """The admin can step up; the operator has a password to change."""
    admin = (await svc.get_user(services, "user_admin")).id
    await auth.enroll_totp(services, admin)
    await auth.grant_elevation(services, admin)
    await svc.set_password(services, svc.CLI, "user_operator", OLD)


async def _pending_seed(services, username: str) -> str:  # type: ignore[no-untyped-def]
    async with services.sessions() as s:
        enc = await s.scalar(select(User.totp_secret_encrypted).where(User.username == username))
    return services.box.decrypt(enc)


def _code_in(text: str) -> str:
    """The line of a delivery message that is the secret itself."""
    lines = [ln.strip().strip("`") for ln in text.splitlines() if ln.strip()]
    return lines[1] if len(lines) > 1 else lines[0]


async def _telegram(tg) -> tuple[dict[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    """Delivered secrets (name -> value) and typed ones, all made through Telegram."""
    admin_chat = PEOPLE["admin"][0]
    await tg.say("admin", "/start")
    delivered: dict[str, str] = {}
    # the operator changes their password (before the admin resets it below)
    reply = await tg.say("operator", f"/password {OLD} {NEW}")
    assert "changed" in reply["text"].lower(), reply["text"]
    # a link code for the viewer, to the admin's private chat
    reply = await tg.say("admin", "/linkcode user_viewer")
    delivered["tg link code"] = _code_in(tg.sb.sent(admin_chat, tg.bot_id)[-1]["text"])
    assert reply
    # a temporary password and a new API key, pressed in the admin group, delivered privately
    for label, name in (("Reset password", "tg temp password"), ("New API key", "tg api key")):
        msg = await tg.say("admin", "/users operator", group=True)
        card = await tap(tg, "admin", ADMIN_GROUP, msg, "👤 user_operator")
        confirm = await tap(tg, "admin", ADMIN_GROUP, card, label)
        await tap(tg, "admin", ADMIN_GROUP, confirm, "Yes")
        delivered[name] = _code_in(tg.sb.sent(admin_chat, tg.bot_id)[-1]["text"])
    # a new user's temporary password, from /adduser in the private chat
    step = await tg.say("admin", "/adduser")
    step = await tg.say("admin", "sweepuser")
    for label in ("viewer", "Generate", "yes", "Later", "Create"):
        step = await tap(tg, "admin", admin_chat, step, label)
    delivered["tg adduser password"] = _code_in(tg.sb.sent(admin_chat, tg.bot_id)[-1]["text"])
    # the viewer's TOTP seed (QR), confirmed with a code typed in private
    await tg.say("viewer", "/mfa")
    seed = await _pending_seed(tg.services, "user_viewer")
    delivered["tg totp seed"] = seed
    typed = {"tg totp code": pyotp.TOTP(seed).now(), "tg old password": OLD, "tg new password": NEW}
    reply = await tg.say("viewer", f"/mfa {typed['tg totp code']}")
    assert "on" in reply["text"]
    # a first admin's setup code, typed by a newcomer in a private chat
    first = await svc.add_user(tg.services, "sweepadmin", "admin")
    typed["tg setup code"] = await create_setup_code(tg.services, first.id)
    tg.sb.add_user(NEWCOMER, "New Admin", "new_admin", "en")
    mark = tg.sb.mark()
    await tg.sb.send_user_message(
        NEWCOMER, NEWCOMER, f"/setup {typed['tg setup code']}", bot_id=tg.bot_id
    )
    reply = await tg.sb.wait_for_message(chat_id=NEWCOMER, bot_id=tg.bot_id, after=mark)
    assert "sweepadmin" in reply["text"], reply["text"]
    # a stranger redeems the link code of the new user
    code = await link_code_for(tg.services, "sweepuser")
    typed["tg redeemed code"] = code
    await tg.say("unlinked", f"/link {code}")
    return delivered, typed


async def _slack(slack, server) -> tuple[dict[str, str], dict[str, str]]:  # type: ignore[no-untyped-def]
    def dm(user: str = "U0ADMIN") -> dict:
        return [m for m in server.posted if m["channel"] == "D" + user[1:]][-1]

    delivered: dict[str, str] = {}
    await slack.slash("U0ADMIN", "linkcode user_viewer")
    delivered["slack link code"] = _code_in(slack_text(dm()))
    for label, name in (("Reset password", "slack temp password"), ("New API key", "slack key")):
        _, ack, _ = await slack.slash("U0ADMIN", "users operator")
        card = await slack_tap(slack, server, "U0ADMIN", ack, "👤 user_operator")
        confirm = await slack_tap(slack, server, "U0ADMIN", card, label)
        _, url = await slack.press("U0ADMIN", slack_token(confirm, "Yes"))
        await server.wait_response(url)
        delivered[name] = _code_in(slack_text(dm()))
    # the operator's temporary password is changed for one of their own (the card forces it)
    temp = delivered["slack temp password"]
    dm_op = dm_of("U0OPERATOR")  # /password and /mfa are private-only: the app's DM
    _, ack, _ = await slack.slash("U0OPERATOR", f"password {temp} {SLACK_NEW}", channel=dm_op)
    assert "changed" in slack_text(ack).lower(), slack_text(ack)
    typed = {"slack new password": SLACK_NEW}
    _, ack, _ = await slack.slash("U0OPERATOR", "mfa", channel=dm_op)
    await slack_upload(server, "piyasa-2fa.png")
    seed = await _pending_seed(slack.services, "user_operator")
    delivered["slack totp seed"] = seed
    typed["slack totp code"] = pyotp.TOTP(seed).now()
    _, ack, _ = await slack.slash("U0OPERATOR", f"mfa {typed['slack totp code']}", channel=dm_op)
    assert "is on" in slack_text(ack), slack_text(ack)
    # /adduser with a password the admin types into the modal
    _, ack, url = await slack.slash("U0ADMIN", "adduser")
    step = await slack_answer(slack, server, "U0ADMIN", "slacksweep", url)
    _, url = await slack.press("U0ADMIN", slack_token(step, "viewer"))
    await server.wait_response(url)
    await server.wait_view("U0ADMIN", count=2)  # the press opened the password modal
    typed["slack typed new-user password"] = SLACK_TYPED
    step = await slack_answer(slack, server, "U0ADMIN", SLACK_TYPED, url)
    for label in ("yes", "Now", "Create"):
        step = await slack_tap(slack, server, "U0ADMIN", step, label)
    assert "slacksweep (viewer) is created" in slack_text(dm())
    # a link code redeemed in the app's DM by someone not linked yet
    code = await link_code_for(slack.services, "slacksweep")
    typed["slack redeemed code"] = code
    _, ack, _ = await slack.slash("U0UNLINKED", f"link {code}", channel=dm_of("U0UNLINKED"))
    assert "slacksweep" in slack_text(ack), slack_text(ack)
    return delivered, typed


def _files(root: Path, skip: Path) -> list[tuple[Path, str]]:
    """Every file under ``root`` but ``skip``, its bytes read as Latin-1 (nothing is lost)."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p != skip)
    return [(p, p.read_bytes().decode("latin-1")) for p in paths]


def _hits(where: str, text: str, secrets: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for name, value in secrets.items() if value and value in text]


async def test_no_secret_is_left_anywhere(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tg, slack, server = world["tg"], world["slack"], world["server"]
    services = tg.services
    await _seed(services)
    tg_delivered, tg_typed = await _telegram(tg)
    sl_delivered, sl_typed = await _slack(slack, server)
    delivered = tg_delivered | sl_delivered
    typed = tg_typed | sl_typed
    configured = {f"configured #{i}": v for i, v in enumerate(_configured(services))}
    everything = delivered | typed | configured
    never_private = typed | configured  # not even in the owner's private chat
    assert all(delivered.values()) and len(set(delivered.values())) == len(delivered)

    found: list[str] = []
    # every log handler and the ring (Piyasa's own DEBUG line proves they captured)
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    logging.getLogger("piyasa.test.sweep").debug("capturing: %s", sentinel)
    for where, text in world["outputs"]().items():
        assert sentinel in text, f"{where} did not capture at DEBUG"
        found += _hits(f"log {where}", text, everything)
    # the data dir and the database files, byte for byte
    key_file = services.settings.data_dir / SECRET_KEY_FILE_NAME  # the key's home (0600)
    for path, text in _files(tmp_path, skip=key_file):
        found += _hits(f"file {path.relative_to(tmp_path)}", text, everything)
    # the audit table, every column of every row
    async with services.sessions() as session:
        for row in (await session.scalars(select(AuditEntry))).all():
            text = " ".join(str(getattr(row, c.key)) for c in AuditEntry.__table__.columns)
            found += _hits(f"audit row {row.id} ({row.action})", text, everything)
    # Telegram transcripts: groups see no secret; a private chat shows only what the bot
    # delivered there, never what the user typed
    sb = tg.sb
    for chat in (ADMIN_GROUP, NEWCOMER, *(uid for uid, _ in PEOPLE.values())):
        for message in sb.messages(chat, bot_id=None if chat < 0 else tg.bot_id):
            text = str(message)
            from_bot = (message.get("from") or {}).get("id") == tg.bot_id
            secrets = never_private if chat > 0 and from_bot else everything
            found += _hits(f"telegram chat {chat} message {message['message_id']}", text, secrets)
    for call in sb.calls():
        if call["method"].lower() in ("sendmessage", "sendphoto", "editmessagetext"):
            chat = int(call["params"].get("chat_id", 0) or 0)
            if chat < 0:
                found += _hits(f"telegram call {call['method']} to {chat}", str(call), everything)
    # Slack: channels see nothing; DMs only what the app delivered
    for message in server.posted:
        dm = str(message.get("channel", "")).startswith("D")
        secrets = never_private if dm else everything
        found += _hits(f"slack message to {message.get('channel')}", str(message), secrets)
    for vid, view in server.views.items():  # modals: never echo what was typed
        found += _hits(f"slack modal {vid}", str(view), everything)
    for responses in server.responses.values():
        for message in responses:
            found += _hits("slack response_url answer", str(message), everything)
    # what the status page serves
    from chatops.web.server import make_web_app, start_web

    runner, port = await start_web(make_web_app(services), "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/", "/api/health", "/metrics"):
                async with http.get(f"http://127.0.0.1:{port}{path}") as r:
                    found += _hits(f"GET {path}", await r.text(), everything)
    finally:
        await runner.cleanup()
    assert not found, "\n".join(found)
