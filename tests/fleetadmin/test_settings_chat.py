"""/settings on Telegram and Slack: current → new before anything changes, Apply, stale
Apply refused, bad values refused with nothing changed, admin-only keys, Undo."""

from __future__ import annotations

from chatops import i18n
from piyasa.fleetadmin import settings as fs
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import audit_count, buttons, next_audit
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.users.helpers import private, slack_answer, slack_tap, tap, token_for


async def value(services, key: str):  # type: ignore[no-untyped-def]
    return (await fs.get(services, key)).value


async def test_telegram_change_is_shown_then_applied_then_undone(tg) -> None:  # noqa: F811
    me = private("operator")
    preview = await tg.say("operator", "/settings scale_factor 2,5")
    assert "1 → 2.5" in preview["text"] and await value(tg.services, "scale_factor") == 1.0
    done = await tap(tg, "operator", me, preview, "Apply")
    assert "scale_factor: 1 → 2.5 (version 1)" in done["text"]
    assert await value(tg.services, "scale_factor") == 2.5
    # Undo, with its confirmation
    confirm = await tap(tg, "operator", me, done, "Undo")
    assert "2.5 → 1" not in confirm["text"] and "goes back to 1" in confirm["text"]
    undone = await tap(tg, "operator", me, confirm, "Yes")
    assert "back to 1" in undone["text"] and await value(tg.services, "scale_factor") == 1.0


async def test_telegram_bad_value_is_refused_and_changes_nothing(tg) -> None:  # noqa: F811
    for text, want in (
        ("/settings scale_factor 11", "11 is outside the range of scale_factor: 0 – 10."),
        ("/settings scale_factor çok", "scale_factor needs a number"),
        ("/settings default_language de", "default_language is one of tr | en."),
        ("/settings nope 1", "There is no setting nope."),
    ):
        reply = await tg.say("operator", text)
        assert want in reply["text"], reply["text"]
        assert not any("Apply" in label for label, _ in buttons(reply))
    assert await fs.history(tg.services) == []


async def test_telegram_stale_apply_is_refused(tg) -> None:  # noqa: F811
    me = private("operator")
    old = await tg.say("operator", "/settings max_msgs_per_min 30")
    await fs.change_setting(tg.services, "max_msgs_per_min", 45, actor="someone_else")
    reply = await tap(tg, "operator", me, old, "Apply")
    assert "was changed meanwhile" in reply["text"]
    assert await value(tg.services, "max_msgs_per_min") == 45.0


async def test_telegram_typed_value_through_the_dialog_in_turkish(tg) -> None:  # noqa: F811
    me = private("operator")
    await tg.say("operator", "/lang tr")
    card = await tg.say("operator", "/settings llm_temperature")
    ask = await tap(tg, "operator", me, card, "Değiştir")
    assert "0 – 2" in ask["text"]
    refused = await tg.say("operator", "3")
    assert i18n.t("tr", "settings.err.range.short") in refused["text"]
    preview = await tg.say("operator", "0.4")
    assert "0.9 → 0.4" in preview["text"]
    await tap(tg, "operator", me, preview, "Uygula")
    assert await value(tg.services, "llm_temperature") == 0.4


async def test_telegram_admin_only_setting_refuses_an_operator(tg) -> None:  # noqa: F811
    me = private("operator")
    preview = await tg.say("operator", "/settings llm_base_url https://llm.example/v1")
    n = await audit_count(tg.services)
    mark = await tg.press("operator", me, preview, token_for(preview, "Apply"))
    row = await next_audit(tg.services, n, action="settings.apply_admin")
    assert row.result == "denied_role" and mark is not None
    assert await value(tg.services, "llm_base_url") == ""
    admin_preview = await tg.say("admin", "/settings llm_base_url https://llm.example/v1")
    await tap(tg, "admin", private("admin"), admin_preview, "Apply")
    assert await value(tg.services, "llm_base_url") == "https://llm.example/v1"


async def test_slack_change_through_the_modal(slack, slack_server) -> None:  # noqa: F811
    _, ack, url = await slack.slash("U0OPERATOR", "settings scale_factor")
    assert "scale_factor" in slack_text(ack)
    await slack_tap(slack, slack_server, "U0OPERATOR", ack, "Change")
    bad = await slack_answer(slack, slack_server, "U0OPERATOR", "12", url)
    assert bad["errors"]  # shown under the modal's input; nothing changed
    assert await value(slack.services, "scale_factor") == 1.0
    _, ack, url = await slack.slash("U0OPERATOR", "settings scale_factor 0.5")
    assert "1 → 0.5" in slack_text(ack)
    done = await slack_tap(slack, slack_server, "U0OPERATOR", ack, "Apply")
    assert "scale_factor: 1 → 0.5" in slack_text(done)
    assert await value(slack.services, "scale_factor") == 0.5
    assert [label for label, _ in slack_buttons(done) if "Undo" in label]


async def test_telegram_undo_of_an_admin_setting_is_the_admins_alone(tg) -> None:  # noqa: F811
    """The Undo of a security-relevant change is a declared admin rule (settings.undo_admin):
    an operator is not shown it, and a press of one (a token bound to them, as an old
    button would be) is refused by the pipeline, audited, and changes nothing."""
    await fs.change_setting(tg.services, "llm_base_url", "https://llm.example/v1", actor="root")
    listing = await tg.say("operator", "/settings")
    assert not [label for label, _ in buttons(listing) if "Undo" in label]
    n = await audit_count(tg.services)
    last = await fs.last_change(tg.services, "llm_base_url")
    uid = private("operator")
    token = await tg.surface.tokens.issue(
        spec_id="settings.undo_admin",
        surface="telegram",
        user=str(uid),
        chat=str(uid),
        params={"key": "llm_base_url", "c": last.id},
        confirmed=True,
    )
    await tg.sb.press_button(uid, uid, listing["message_id"], token, forge=True, bot_id=tg.bot_id)
    row = await next_audit(tg.services, n, action="settings.undo_admin")
    assert row.result == "denied_role"
    assert await value(tg.services, "llm_base_url") == "https://llm.example/v1"
    me = private("admin")
    confirm = await tap(tg, "admin", me, await tg.say("admin", "/settings"), "Undo")
    assert "goes back to —" in confirm["text"]
    undone = await tap(tg, "admin", me, confirm, "Yes")
    assert "llm_base_url" in undone["text"] and await value(tg.services, "llm_base_url") == ""


async def test_telegram_stale_undo_is_refused_and_nothing_is_undone(tg) -> None:  # noqa: F811
    me = private("operator")
    await fs.change_setting(tg.services, "scale_factor", 2, actor="ayse")
    card = await tg.say("operator", "/settings scale_factor")
    await fs.change_setting(tg.services, "scale_factor", 3, actor="mehmet")  # meanwhile
    confirm = await tap(tg, "operator", me, card, "Undo")
    reply = await tap(tg, "operator", me, confirm, "Yes")
    assert "scale_factor was changed again since that Undo was shown" in reply["text"]
    assert await value(tg.services, "scale_factor") == 3.0
    # nothing to undo: no Undo button at all
    fresh = await tg.say("operator", "/settings reply_first")
    assert not [label for label, _ in buttons(fresh) if "Undo" in label]
