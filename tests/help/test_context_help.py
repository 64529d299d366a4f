"""Contextual help (issue 17, items 6-7): every screen a command or button produces has
its ❓ Help, every refusal and error its 📘 Learn more to the KB entry that explains it,
and ``/help WORDS`` is the one help search. Bad input (a forged "?" or Learn more, a query
too long) is answered clearly and changes nothing."""

from __future__ import annotations

import string

import pytest

from chatops import context_help, i18n
from chatops.commands import load_all
from chatops.context import Client, Context
from piyasa.admin.identity import Principal
from piyasa.help.kb import LANGS, knowledge_base
from tests.chatops.conftest import people, slack, slack_server, tg  # noqa: F401
from tests.chatops.harness import PEOPLE, audit_count, buttons, next_audit
from tests.chatops.slack_server import slack_buttons, slack_text
from tests.users.helpers import slack_tap, tap, tap_new

REGISTRY = load_all()
KB = knowledge_base()
HELP = i18n.t("en", "kb.btn.about")
LEARN = i18n.t("en", "help.btn.learn")
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def labels(message: dict) -> list[str]:
    return [label for label, _ in buttons(message)]


def reader(role: str, lang: str = "en") -> Context:
    """A request context of ``role`` (the parts :func:`context_help.decorate` reads)."""
    actor = Principal(1, role, role, False, lang, False, "telegram", "1")
    return Context(
        services=None,  # type: ignore[arg-type]
        registry=REGISTRY,
        surface="telegram",
        client=Client("telegram", "1"),
        actor=actor if role != "public" else None,
        lang=lang,
        chat_id="1",
        chat_private=True,
    )


def filled(template: str) -> str:
    """``template`` with every placeholder given a plausible value."""
    names = {f for _t, f, _s, _c in string.Formatter().parse(template) if f}
    return template.format(**dict.fromkeys(names, "x1"))


# -- every refusal and error has a KB target, in both languages ---------------------------


def test_error_keys_cover_the_pipeline_refusals() -> None:
    keys = context_help.error_keys()
    assert len(keys) >= 100
    for key in ("refuse.denied", "refuse.unlinked", "refuse.locked", "refuse.button"):
        assert key in keys
    assert {"refuse.input.too_long", "refuse.usage", "error.internal", "dialog.expired"} <= set(
        keys
    )
    assert {"stepup.not_enrolled", "stepup.throttled", "slack.error.ratelimited"} <= set(keys)


@pytest.mark.parametrize("lang", LANGS)
def test_every_refusal_and_error_key_has_a_kb_target(lang: str) -> None:
    problems = []
    for key in context_help.error_keys():
        entry = context_help.target(key)
        if key not in i18n.catalog(lang):
            problems.append(f"{key}: no {lang} text")
        if entry is None or entry not in KB.entries:
            problems.append(f"{key}: target {entry}")
        elif not KB.entries[entry].w(lang).title:
            problems.append(f"{key}: {entry} has no {lang} title")
    assert not problems, problems
    assert set(context_help.learn_entries()) <= set(KB.entries)


@pytest.mark.parametrize("lang", LANGS)
def test_an_error_text_is_traced_back_to_its_entry(lang: str) -> None:
    """What a handler shows (the key is gone, only the text is left) still finds its
    entry: the entry of the key recognised names the same entry as the key itself."""
    wrong = []
    for key in context_help.error_keys():
        text = filled(i18n.catalog(lang)[key])
        found = context_help.key_of(text, lang)
        if found is not None and context_help.target(found) != context_help.target(key):
            wrong.append((key, found))
    assert not wrong, wrong
    assert context_help.key_of("all good, 3 bots running", lang) is None


# -- on the surfaces -------------------------------------------------------------------


@SQLITE
async def test_telegram_screen_help_and_refusal_learn_more(tg) -> None:  # noqa: F811
    me = PEOPLE["viewer"][0]
    who = await tg.say("viewer", "/whoami")
    assert labels(who) == [HELP]
    about = await tap(tg, "viewer", me, who, HELP)
    assert "/whoami" in about["text"] and i18n.t("en", "cmd.whoami.help") in about["text"]
    # a refusal: the same words as before, plus the entry that explains it
    refused = await tg.say("viewer", "/audit")
    assert refused["text"] == "⛔ " + i18n.t("en", "refuse.denied", help_cmd="/help")
    assert labels(refused) == [LEARN]
    entry = await tap_new(tg, "viewer", me, refused, LEARN)
    assert KB.entries["chat-access-denied"].w("en").title in entry["text"]
    assert "Cause" in entry["text"]
    # an unlinked reader may press it too (public): the entry's text, no KB buttons
    stranger = PEOPLE["unlinked"][0]
    told = await tg.say("unlinked", "/whoami")
    assert labels(told) == [LEARN]
    why = await tap_new(tg, "unlinked", stranger, told, LEARN)
    assert KB.entries["chat-not-linked"].w("en").title in why["text"] and not buttons(why)


@SQLITE
async def test_telegram_help_query_searches_commands_kb_and_guide(tg) -> None:  # noqa: F811
    found = await tg.say("viewer", "/help database locked")
    assert "Knowledge base:" in found["text"]
    assert labels(found)[0] == f"📘 {KB.entries['db-locked'].w('en').title}"
    cmds = await tg.say("viewer", "/help health")  # a command name: its details, as before
    assert cmds["text"].startswith("/health") and "Usage" in cmds["text"]
    words = await tg.say("viewer", "/help fleet health")
    assert "/health" in words["text"] and "Commands:" in words["text"]
    assert "/audit" not in words["text"]  # only what the reader may run
    none = await tg.say("viewer", "/help qwxzvbnm")
    assert "Nothing in the command help" in none["text"] and "qwxzvbnm" in none["text"]
    assert any(label.startswith("Telegram (") for label in labels(none))  # topics
    assert i18n.t("en", "docs.btn.home") in labels(none)
    await tg.say("viewer", "/lang tr")
    tr = await tg.say("viewer", "/help veritabani kilitli")
    assert labels(tr)[0] == f"📘 {KB.entries['db-locked'].w('tr').title}"


@SQLITE
async def test_bad_input_is_answered_clearly_and_changes_nothing(tg) -> None:  # noqa: F811
    uid = PEOPLE["viewer"][0]
    n = await audit_count(tg.services)
    long = await tg.say("viewer", "/help " + "database " * 40)
    assert "too long" in long["text"] and "200" in long["text"] and labels(long) == [LEARN]
    assert (await next_audit(tg.services, n, action="help")).result == "refused_input"
    anchor = await tg.say("viewer", "/start")
    for spec_id, params, want in (
        ("kb.about", {"cmd": "no-such-screen"}, i18n.t("en", "kb.about.none")),
        ("help.learn", {"id": "no-such-entry"}, i18n.t("en", "refuse.param")),
        ("help.learn", {"id": "db-locked"}, i18n.t("en", "refuse.param")),  # not a target
    ):
        n = await audit_count(tg.services)
        token = await tg.surface.tokens.issue(
            spec_id=spec_id, surface="telegram", user=str(uid), chat=str(uid), params=params
        )
        mark = tg.sb.mark()
        qid = await tg.sb.press_button(
            uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
        )
        if spec_id == "kb.about":
            reply = await tg.sb.wait_for_message(
                chat_id=uid, edits=True, after=mark, bot_id=tg.bot_id
            )
            assert want in reply["text"] and "no-such-screen" not in reply["text"]
        else:
            from tests.chatops.harness import wait_answer

            assert (await wait_answer(tg.sb, qid)).get("text") == want[:200]
            assert (await next_audit(tg.services, n, action=spec_id)).result == "refused_param"


@SQLITE
async def test_slack_screen_help_refusal_learn_more_and_search(slack, slack_server) -> None:  # noqa: F811
    sid = PEOPLE["viewer"][1]
    _s, who, _url = await slack.slash(sid, "whoami")
    assert [b for b, _ in slack_buttons(who)] == [HELP]
    about = await slack_tap(slack, slack_server, sid, who, HELP)
    assert i18n.t("en", "cmd.whoami.help") in slack_text(about)
    _s, refused, _url = await slack.slash(sid, "audit")
    assert [b for b, _ in slack_buttons(refused)] == [LEARN]
    entry = await slack_tap(slack, slack_server, sid, refused, LEARN)
    assert KB.entries["chat-access-denied"].w("en").title in slack_text(entry)
    _s, found, _url = await slack.slash(sid, "help database locked")
    assert KB.entries["db-locked"].w("en").title in slack_text(found)
    _s, none, _url = await slack.slash(sid, "help qwxzvbnm")
    assert "Nothing in the command help" in slack_text(none)
