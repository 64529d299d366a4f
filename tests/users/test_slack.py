"""User management on Slack: signed requests into the real slack-bolt app, local Web API."""

from __future__ import annotations

import pyotp

from chatops import i18n
from piyasa.admin import audit, passwords
from piyasa.admin import users as svc
from tests.chatops.slack_server import dm_of, slack_buttons, slack_text
from tests.users.helpers import slack_answer, slack_tap, slack_token, slack_upload


async def test_list_card_role_change_and_stale_button(slack, slack_server) -> None:
    _, ack, _ = await slack.slash("U0ADMIN", "users")
    assert "Users (4)" in slack_text(ack) and "just now" in slack_text(ack)
    card = await slack_tap(slack, slack_server, "U0ADMIN", ack, "👤 user_viewer")
    assert card["replace_original"] is True and "Failed logins" in slack_text(card)
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", card, "→ operator")
    assert "Change the role of user_viewer to operator?" in slack_text(confirm)
    yes = slack_token(confirm, "Yes")
    _, url = await slack.press("U0ADMIN", yes)
    (done,) = await slack_server.wait_response(url)
    assert "user_viewer is now operator" in slack_text(done)
    _, url = await slack.press("U0ADMIN", yes)  # single use
    (stale,) = await slack_server.wait_response(url)
    assert i18n.t("en", "refuse.button") in slack_text(stale) and not stale.get("replace_original")
    # someone else's button, and a non-admin typing the command
    _, url = await slack.press("U0OPERATOR", slack_token(card, "Lock"))
    (foreign,) = await slack_server.wait_response(url)
    assert i18n.t("en", "refuse.button") in slack_text(foreign)
    _, ack, _ = await slack.slash("U0OPERATOR", "users")
    assert "does not exist or you may not run it" in slack_text(ack)
    assert (await svc.get_user(slack.services, "user_viewer")).role == "operator"


def _dm(slack_server, user: str) -> dict:  # type: ignore[no-untyped-def]
    """The app's last direct message to ``user`` (U0ADMIN -> D0ADMIN)."""
    return [m for m in slack_server.posted if m["channel"] == "D" + user[1:]][-1]


async def test_reset_password_goes_to_the_dm_and_self_lock_refused(slack, slack_server) -> None:
    _, ack, _ = await slack.slash("U0ADMIN", "users operator")
    card = await slack_tap(slack, slack_server, "U0ADMIN", ack, "👤 user_operator")
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", card, "Reset password")
    note = await slack_tap(slack, slack_server, "U0ADMIN", confirm, "Yes")
    assert i18n.t("en", "render.sent_private") in slack_text(note)
    secret = _dm(slack_server, "U0ADMIN")
    temp = [b for b in secret["blocks"] if "```" in b.get("text", {}).get("text", "")]
    temp = temp[0]["text"]["text"].strip("`")
    assert (await passwords.check_login(slack.services, "user_operator", temp)).must_change
    assert temp not in str(note)
    channels = [m for m in slack_server.posted if not m["channel"].startswith("D")]
    assert all(temp not in str(m) for m in channels)  # never in a channel
    _, ack, _ = await slack.slash("U0ADMIN", "users user_admin")
    card = await slack_tap(slack, slack_server, "U0ADMIN", ack, "👤 user_admin")
    confirm = await slack_tap(slack, slack_server, "U0ADMIN", card, "Lock")
    refused = await slack_tap(slack, slack_server, "U0ADMIN", confirm, "Yes")
    assert "own account" in slack_text(refused)


async def test_add_user_dialog_answered_in_modals(slack, slack_server) -> None:
    _, ack, url = await slack.slash("U0ADMIN", "adduser")
    assert "Step 1/6" in slack_text(ack)
    step = await slack_answer(slack, slack_server, "U0ADMIN", "deniz", url)
    assert "Step 2/6" in slack_text(step)
    _, url = await slack.press("U0ADMIN", slack_token(step, "viewer"))
    step = (await slack_server.wait_response(url))[-1]
    assert "Step 3/6" in slack_text(step)
    await slack_server.wait_view("U0ADMIN", count=2)  # the press opened the password modal
    step = await slack_answer(slack, slack_server, "U0ADMIN", "a-slack-typed-passphrase", url)
    assert "Step 4/6" in slack_text(step)
    step = await slack_tap(slack, slack_server, "U0ADMIN", step, "yes")
    step = await slack_tap(slack, slack_server, "U0ADMIN", step, "Now")
    assert "Step 6/6" in slack_text(step)
    done = await slack_tap(slack, slack_server, "U0ADMIN", step, "Create")
    assert i18n.t("en", "render.sent_private") in slack_text(done)
    dm = slack_text(_dm(slack_server, "U0ADMIN"))
    assert "deniz (viewer) is created" in dm and "/piyasa mfa" in dm
    card = await svc.card(slack.services, "deniz")
    assert card.must_change and card.mfa == "pending"
    rows = await audit.recent(slack.services, 50)
    assert all("a-slack-typed-passphrase" not in str(r.params) for r in rows)


async def test_bulk_role_preview_and_mfa_qr_goes_to_dm(slack, slack_server) -> None:
    _, ack, _ = await slack.slash("U0ADMIN", "users")
    msg = await slack_tap(slack, slack_server, "U0ADMIN", ack, "Select")
    for name in ("user_viewer", "user_operator"):
        msg = await slack_tap(slack, slack_server, "U0ADMIN", msg, f"☐ {name}")
    preview = await slack_tap(slack, slack_server, "U0ADMIN", msg, "→ operator")
    assert "make operator 1 user(s): user_viewer." in slack_text(preview)
    assert "Skipped: user_operator (already so)" in slack_text(preview)
    done = await slack_tap(slack, slack_server, "U0ADMIN", preview, "Yes")
    assert "Done: make operator 1 user(s)" in slack_text(done)
    # making admins in bulk needs a step-up
    _, url = await slack.press("U0ADMIN", slack_token(msg, "→ admin"))
    (need,) = await slack_server.wait_response(url)
    assert "not set up" in slack_text(need)
    # /mfa is private-only: in the app's DM the QR lands in that DM itself
    _, ack, _ = await slack.slash("U0VIEWER", "mfa", channel=dm_of("U0VIEWER"))
    assert "Scan the QR code" in slack_text(_dm(slack_server, "U0VIEWER"))
    upload = await slack_upload(slack_server, "piyasa-2fa.png")
    assert upload["channel"] == "D0VIEWER" and upload["size"] > 100
    seed = await _pending_seed(slack.services, "user_viewer")
    _, ack, _ = await slack.slash(
        "U0VIEWER", f"mfa {pyotp.TOTP(seed).now()}", channel=dm_of("U0VIEWER")
    )
    assert "is on" in slack_text(ack)


async def _pending_seed(services, username: str) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from piyasa.db.models import User

    async with services.sessions() as s:
        enc = await s.scalar(select(User.totp_secret_encrypted).where(User.username == username))
    return services.box.decrypt(enc)


async def test_audit_csv_is_uploaded_to_the_dm(slack, slack_server) -> None:
    _, ack, _ = await slack.slash("U0ADMIN", "audit period=24h")
    assert "Audit log" in slack_text(ack) and slack_buttons(ack)
    done = await slack_tap(slack, slack_server, "U0ADMIN", ack, "CSV")
    assert "export" in slack_text(done)
    upload = await slack_upload(slack_server, ".csv")
    assert upload["channel"] == "D0ADMIN"
