"""Every registered command and button action x every role x both surfaces: each refuses
every role below its requirement, with a refusal that says nothing about the command."""

from __future__ import annotations

import pytest

from chatops import i18n
from chatops.commands import load_all
from chatops.commands.registry import Action, Command, Spec
from tests.chatops.harness import (
    ADMIN_GROUP,
    LEVEL,
    PEOPLE,
    ROLE_NAMES,
    audit_count,
    buttons,
    next_audit,
    wait_answer,
)
from tests.chatops.slack_server import dm_of, slack_buttons, slack_text

REGISTRY = load_all()
DENIAL = {"unlinked": "unlinked", "locked": "locked"}
SPECS = list(REGISTRY.specs())


def expected_refusal(role: str, surface: str) -> str:
    prefix = "/piyasa " if surface == "slack" else "/"
    key = {"unlinked": "refuse.unlinked", "locked": "refuse.locked"}.get(role, "refuse.denied")
    return i18n.t(
        "en",
        key,
        help_cmd=f"{prefix}help",
        link_cmd=f"{prefix}link",
        surface=surface.capitalize(),
        id=PEOPLE[role][0 if surface == "telegram" else 1],
    )


# issue 17 (h17ctx): a refusal carries one button, 📘 Learn more, the same for every
# command (it opens the entry about the refusal itself), so it still says nothing
LEARN = [i18n.t("en", "help.btn.learn")]


def typed(spec: Spec) -> str:
    args = " ".join("x" if not a.choices else a.choices[0] for a in spec.args if a.required)
    return f"{spec.id} {args}".strip()


def refused(role: str, spec: Spec) -> bool:
    return spec.level > LEVEL[role] or (role == "locked" and spec.level > 0)


async def last_result(services, before: int, spec: Spec) -> str:  # type: ignore[no-untyped-def]
    return (await next_audit(services, before, action=spec.id)).result


# -- issue 14, flimits: /preview and /limits are in the sweep ------------------------------
def test_sweep_covers_preview_and_limits() -> None:
    ids = {s.id: s for s in SPECS}
    assert {"preview", "preview.show", "preview.sandbox"} <= set(ids)
    assert {"limits", "limits.refresh", "limits.live", "limits.stop_live", "limits.undo"} <= set(
        ids
    )
    assert (
        ids["preview"].level == LEVEL["operator"] and ids["limits.undo"].level == LEVEL["operator"]
    )
    assert ids["limits"].level == LEVEL["viewer"]


# -- issue 17, k17: /kb and its buttons are in the sweep (viewer reads, fixes keep their rule) --
def test_sweep_covers_kb() -> None:
    ids = {s.id: s for s in SPECS}
    kb = ("kb", "kb.home", "kb.cat", "kb.show", "kb.about")
    assert {k: ids[k].role for k in kb} == dict.fromkeys(kb, "viewer")
    # h17ctx: Learn more is public (an unlinked reader learns why too), its ids declared
    assert ids["help.learn"].role == "public" and ids["help.learn"] in WITH_PARAMS
    assert {s.id for s in WITH_PARAMS} >= {"kb.cat", "kb.show"}  # forged ids refused


def test_sweep_covers_everything() -> None:
    assert {s.id for s in SPECS} >= {"help", "whoami", "linkcode", "lang.set"}
    notifications = {  # issue 13: viewer reads, operator acts, admin silences and routes
        "alerts": "viewer",
        "alerts.view": "viewer",
        "alerts.read_all": "viewer",
        "alerts.refresh": "viewer",
        "alerts.ack": "operator",
        "alerts.snooze": "operator",
        "alerts.resolve": "operator",
        "alerts.silence": "admin",
        "alerts.test": "admin",
        "notify": "viewer",
        "silence": "admin",
        "silence.expire": "admin",
        "routes": "admin",
        "channels": "admin",
        "channels.test": "admin",
        "channels.remove": "admin",
        "addchannel": "admin",
    }
    assert {s.id: s.role for s in SPECS if s.id in notifications} == notifications
    assert all(isinstance(s, Command | Action) for s in SPECS)


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_telegram_refuses_below_requirement(tg, role: str) -> None:
    uid = PEOPLE[role][0]
    want = expected_refusal(role, "telegram")
    problems = []
    anchor = await tg.say(role, "/start")  # a message of the bot to hang forged presses on
    for spec in SPECS:
        n = await audit_count(tg.services)
        if isinstance(spec, Command):
            reply = await tg.say(role, "/" + typed(spec))
            result = await last_result(tg.services, n, spec)
            if refused(role, spec):
                if reply["text"] != f"⛔ {want}" or [b for b, _ in buttons(reply)] != LEARN:
                    problems.append(f"/{spec.id}: {reply['text']!r}")
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"/{spec.id}: audit says {result}")
            elif result.startswith("denied"):
                problems.append(f"/{spec.id} refused although allowed")
        else:
            # A button rendered for this user earlier (e.g. before a demotion or a lock).
            token = await tg.surface.tokens.issue(
                spec_id=spec.id,
                surface="telegram",
                user=str(uid),
                chat=str(uid),
                params={"code": "en"},
            )
            before = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
            qid = await tg.sb.press_button(
                uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
            )
            answer = await wait_answer(tg.sb, qid)
            result = await last_result(tg.services, n, spec)
            after = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
            if refused(role, spec):
                if (answer.get("text") or "") != want[:200] or after != before:
                    problems.append(f"{spec.id}: {answer} changed={after - before}")
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"{spec.id}: audit says {result}")
            elif result.startswith("denied"):
                problems.append(f"{spec.id} press refused although allowed")
    assert not problems, problems


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_slack_refuses_below_requirement(slack, slack_server, role: str) -> None:
    sid = PEOPLE[role][1]
    want = expected_refusal(role, "slack")
    problems = []
    for spec in SPECS:
        n = await audit_count(slack.services)
        if isinstance(spec, Command):
            status, ack, _url = await slack.slash(sid, typed(spec))
            text = slack_text(ack)
            assert status == 200
            result = await last_result(slack.services, n, spec)
            if refused(role, spec):
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"{spec.id}: audit says {result}")
                if (
                    want.replace("<", "&lt;") not in text
                    or [b for b, _ in slack_buttons(ack)] != LEARN
                ):
                    problems.append(f"{spec.id}: {text!r}")
                if spec.id in text.split(want)[0]:
                    problems.append(f"{spec.id}: refusal names the command")
            elif result.startswith("denied"):
                problems.append(f"{spec.id} refused although allowed")
        else:
            token = await slack.surface_tokens.issue(
                spec_id=spec.id, surface="slack", user=sid, chat="C0OPS", params={"code": "en"}
            )
            status, url = await slack.press(sid, token)
            assert status == 200
            (answer,) = await slack_server.wait_response(url)
            result = await last_result(slack.services, n, spec)
            if refused(role, spec):
                if result != f"denied_{DENIAL.get(role, 'role')}":
                    problems.append(f"{spec.id}: audit says {result}")
                if want not in slack_text(answer) or answer.get("replace_original"):
                    problems.append(f"{spec.id}: {answer}")
            elif result.startswith("denied"):
                problems.append(f"{spec.id} press refused although allowed")
    assert not problems, problems


# -- declared rules beyond the role: bootstrap, params, private-only ------------------------

BOOTSTRAPPED = REGISTRY.bootstraps()
WITH_PARAMS = [s for s in SPECS if s.params]
PRIVATE_ONLY = [s for s in SPECS if s.private_only]


async def open_bootstrap(services, name: str) -> None:  # type: ignore[no-untyped-def]
    """Make the declared bootstrap rule ``name`` hold (how each rule opens, in one place)."""
    from piyasa.admin.setup.codes import create_setup_code
    from piyasa.admin.users import add_user

    openers = {"setup_code": lambda: add_user(services, "fresh_admin", "admin")}
    info = await openers[name]()  # a new rule must say here how it opens
    await create_setup_code(services, info.id)


def bootstrap_lets_in(role: str) -> bool:
    return role != "locked"  # anyone not locked, linked or not


def test_declared_rules_exist() -> None:
    assert [c.id for c in BOOTSTRAPPED] == ["setup"]
    assert {s.id for s in WITH_PARAMS} >= {"users.role", "users.bulk"}
    assert {s.id for s in PRIVATE_ONLY} >= {"password", "stepup", "mfa", "link"}


def help_line(spec: Command, surface: str) -> str:
    return f"{'/piyasa ' if surface == 'slack' else '/'}{spec.usage()} —"


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_telegram_bootstrap_rules_from_the_registry(tg, role: str) -> None:
    """Closed: the role alone decides, in /help and when run. Open: whoever the rule lets
    in sees it in /help and is let in (audited ``via`` the rule); locked accounts never."""
    problems = []
    for is_open in (False, True):
        if is_open:
            for spec in BOOTSTRAPPED:
                await open_bootstrap(tg.services, spec.bootstrap.name)  # type: ignore[union-attr]
        listing = (await tg.say(role, "/help"))["text"]
        for spec in BOOTSTRAPPED:
            allowed = not refused(role, spec) or (is_open and bootstrap_lets_in(role))
            if (help_line(spec, "telegram") in listing) != allowed:
                problems.append(f"open={is_open}: /help lists /{spec.id}: {not allowed}")
            n = await audit_count(tg.services)
            await tg.say(role, "/" + spec.id)
            row = await next_audit(tg.services, n, action=spec.id)
            if row.result.startswith("denied") == allowed:
                problems.append(f"open={is_open}: /{spec.id} says {row.result}")
            via_rule = is_open and refused(role, spec) and allowed
            if (row.params or {}).get("via") != (spec.bootstrap.name if via_rule else None):  # type: ignore[union-attr]
                problems.append(f"open={is_open}: /{spec.id} audit via {row.params}")
    assert not problems, problems


@pytest.mark.parametrize("role", ROLE_NAMES)
async def test_slack_bootstrap_rules_from_the_registry(slack, role: str) -> None:
    sid = PEOPLE[role][1]
    problems = []
    for is_open in (False, True):
        if is_open:
            for spec in BOOTSTRAPPED:
                await open_bootstrap(slack.services, spec.bootstrap.name)  # type: ignore[union-attr]
        listing = slack_text((await slack.slash(sid, "help"))[1])
        for spec in BOOTSTRAPPED:
            allowed = not refused(role, spec) or (is_open and bootstrap_lets_in(role))
            if (help_line(spec, "slack") in listing) != allowed:
                problems.append(f"open={is_open}: help lists {spec.id}: {not allowed}")
            n = await audit_count(slack.services)
            await slack.slash(sid, spec.id)
            row = await next_audit(slack.services, n, action=spec.id)
            if row.result.startswith("denied") == allowed:
                problems.append(f"open={is_open}: {spec.id} says {row.result}")
    assert not problems, problems


def breaking(spec: Spec) -> dict[str, str]:
    """Params that break every declared rule of ``spec`` ("admin" where it is not allowed)."""
    return {p.name: "admin" if "admin" not in p.choices else "nobody" for p in spec.params}


async def test_telegram_param_rules_refuse_a_press_that_breaks_them(tg) -> None:
    """An admin (allowed by role) pressing a button whose params break the declared rule
    (stale, forged): refused by the pipeline with a toast, the message untouched, audited."""
    want = i18n.t("en", "refuse.param")
    uid = PEOPLE["admin"][0]
    anchor = await tg.say("admin", "/start")
    problems = []
    for spec in WITH_PARAMS:
        n = await audit_count(tg.services)
        token = await tg.surface.tokens.issue(
            spec_id=spec.id,
            surface="telegram",
            user=str(uid),
            chat=str(uid),
            params=breaking(spec),
            confirmed=True,
        )
        before = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
        qid = await tg.sb.press_button(
            uid, uid, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
        )
        text = (await wait_answer(tg.sb, qid)).get("text") or ""
        result = await last_result(tg.services, n, spec)
        after = len(tg.sb.calls("editMessageText")) + len(tg.sb.calls("sendMessage"))
        if result != "refused_param" or text != want or after != before:
            problems.append(f"{spec.id}: {result} {text!r}")
    assert not problems, problems


async def test_slack_param_rules_refuse_a_press_that_breaks_them(slack, slack_server) -> None:
    want = i18n.t("en", "refuse.param")
    problems = []
    for spec in WITH_PARAMS:
        n = await audit_count(slack.services)
        token = await slack.surface_tokens.issue(
            spec_id=spec.id,
            surface="slack",
            user="U0ADMIN",
            chat="C0OPS",
            params=breaking(spec),
            confirmed=True,
        )
        _status, url = await slack.press("U0ADMIN", token)
        (answer,) = await slack_server.wait_response(url)
        result = await last_result(slack.services, n, spec)
        if result != "refused_param" or want not in slack_text(answer):
            problems.append(f"{spec.id}: {result} {answer}")
        if answer.get("replace_original"):
            problems.append(f"{spec.id}: the pressed message was replaced")
    assert not problems, problems


async def test_slack_private_only_rules_channel_refused_dm_allowed(slack, slack_server) -> None:
    """Every private-only command and button, by a role allowed to run it: refused in a
    channel (pointing to the app's DM, nothing shown beside it), let through in the DM."""
    where = i18n.t("en", "refuse.private_where.slack")
    want = i18n.t("en", "refuse.private_only", where=where)
    problems = []
    for spec in PRIVATE_ONLY:
        for channel in ("C0OPS", dm_of("U0ADMIN")):
            n = await audit_count(slack.services)
            if isinstance(spec, Command):
                _status, ack, _url = await slack.slash("U0ADMIN", typed(spec), channel=channel)
                text = slack_text(ack)
                shown = slack_buttons(ack) if isinstance(ack, dict) else []
            else:
                token = await slack.surface_tokens.issue(
                    spec_id=spec.id, surface="slack", user="U0ADMIN", chat=channel, params={}
                )
                _status, url = await slack.press("U0ADMIN", token, channel=channel)
                answer = (await slack_server.wait_response(url))[0]
                text, shown = slack_text(answer), slack_buttons(answer)
            result = await last_result(slack.services, n, spec)
            in_dm = channel.startswith("D")
            if in_dm and (result == "refused_private_only" or result.startswith("denied")):
                problems.append(f"{spec.id} in the DM: {result}")
            shown_labels = [b for b, _ in shown]
            if not in_dm and (
                result != "refused_private_only" or want not in text or shown_labels != LEARN
            ):
                problems.append(f"{spec.id} in a channel: {result} {text!r}")
    assert not problems, problems


async def test_telegram_private_only_rules_group_refused_private_allowed(tg) -> None:
    """The same rule on Telegram: in the admin group refused (or, with its secrets typed,
    dealt with as exposed), in the private chat let through."""
    uid = PEOPLE["admin"][0]
    anchors = {
        ADMIN_GROUP: await tg.say("admin", "/start", group=True),
        uid: await tg.say("admin", "/start"),
    }
    problems = []
    for spec in PRIVATE_ONLY:
        for chat, anchor in anchors.items():
            n = await audit_count(tg.services)
            if isinstance(spec, Command):
                await tg.say("admin", "/" + typed(spec), group=chat == ADMIN_GROUP)
            else:
                token = await tg.surface.tokens.issue(
                    spec_id=spec.id, surface="telegram", user=str(uid), chat=str(chat)
                )
                qid = await tg.sb.press_button(
                    uid, chat, anchor["message_id"], token, forge=True, bot_id=tg.bot_id
                )
                await wait_answer(tg.sb, qid)
            result = await last_result(tg.services, n, spec)
            refusals = ("refused_private_only", "refused_secret_exposed")
            if (result in refusals) != (chat == ADMIN_GROUP) or result.startswith("denied"):
                problems.append(f"{spec.id} in {chat}: {result}")
    assert not problems, problems


# -- issue 14, fchats: /chats and /settings are swept above with these declared roles ------

FCHATS_ROLES = {
    "chats": "viewer",
    "chats.list": "viewer",
    "chats.card": "viewer",
    "chats.enable": "operator",
    "chats.topic": "operator",
    "chats.edit": "operator",
    "chats.remove": "operator",
    "chats.input": "operator",
    "chats.choose": "operator",
    "settings": "viewer",
    "settings.card": "viewer",
    "settings.back_list": "viewer",
    "settings.history": "viewer",
    "settings.propose": "operator",
    "settings.edit": "operator",
    "settings.apply": "operator",
    "settings.apply_admin": "admin",
    "settings.undo": "operator",
    "settings.undo_admin": "admin",
    "settings.input": "operator",
}


def test_fchats_specs_are_swept_with_their_roles() -> None:
    swept = {s.id: s.role for s in SPECS if s.id in FCHATS_ROLES}
    assert swept == FCHATS_ROLES
    assert {s.id for s in WITH_PARAMS} >= {
        "chats.topic",
        "chats.edit",
        "settings.apply",
        "settings.undo",
        "settings.undo_admin",
    }


# -- issue 14, /bots (fbots): declared rules the sweep above runs on both surfaces ------------


def test_bots_declarations() -> None:
    """Viewers read the fleet's bots, operators change them, admins rotate tokens; tokens
    are typed only in private chats; pickers accept only their offered values."""
    ids = {s.id: s for s in SPECS}
    assert ids["bots"].role == "viewer" and ids["bots.card"].role == "viewer"
    for spec_id in (
        "bots.enable",
        "bots.disable",
        "bots.edit",
        "bots.save",
        "bots.preview",
        "bots.chat_set",
        "bots.set_hours",
        "addbot",
        "botedit",
        "delbot",
    ):
        assert ids[spec_id].role == "operator", spec_id
    assert ids["bots.rotate"].role == ids["bottoken"].role == "admin"
    assert {"addbot", "addbot.input", "bottoken", "bottoken.input", "bots.rotate"} <= {
        s.id for s in PRIVATE_ONLY
    }
    assert {"bots.edit", "bots.set_hours", "bots.set_zone", "bots.set_speed"} <= {
        s.id for s in WITH_PARAMS
    }
    assert ids["delbot"].confirm and ids["bots.disable"].confirm


# -- issue 16, /backup and the restore wizard (b16chat): swept above on both surfaces --------

BACKUP_ROLES = {
    "backup": "viewer",
    "backup.page": "viewer",
    "backup.card": "viewer",
    "backup.now": "operator",
    "backup.test": "operator",
    "backup.verify": "operator",
    "backup.download": "operator",
    "backup.schedule": "admin",
    "backup.edit": "admin",
    "backup.delete": "admin",
    "backup.input": "admin",
    "backup.choose": "admin",
    "restore": "admin",
    "restore.choose": "admin",
    "restore.input": "admin",
    "restore.cancel": "admin",
}


def test_backup_specs_are_swept_with_their_roles() -> None:
    """Viewers read, operators back up / verify / test-restore / download, admins edit
    the schedule, delete and restore; restoring (its start, Continue and the typed word)
    needs a TOTP step-up; server-side params limit Backup now and the editor's fields."""
    ids = {s.id: s for s in SPECS}
    assert {k: ids[k].role for k in BACKUP_ROLES} == BACKUP_ROLES
    assert {s.id for s in SPECS if s.step_up and s.id.startswith("restore")} == {
        "restore",
        "restore.choose",
        "restore.input",
    }
    assert {"backup.now", "backup.edit", "restore.choose"} <= {s.id for s in WITH_PARAMS}


# -- issue 15, /analytics (a15chat): read-only for viewers, every screen swept above ---------


def test_analytics_specs_are_swept_as_viewer_reads() -> None:
    """Every /analytics screen only reads, so every button is the command's viewer role;
    the chart and CSV buttons accept only their offered kinds and tables."""
    ids = {s.id: s for s in SPECS if s.command_name == "analytics"}
    assert set(ids) == {
        "analytics",
        "analytics.period",
        "analytics.bots",
        "analytics.bot",
        "analytics.chats",
        "analytics.models",
        "analytics.compare",
        "analytics.compared",
        "analytics.chart",
        "analytics.csv",
    }
    assert {s.role for s in ids.values()} == {"viewer"}
    assert {"analytics.bots", "analytics.chart", "analytics.csv"} <= {s.id for s in WITH_PARAMS}


# -- issue 17, d17: /diagnose and /docs are in the sweep (viewer reads, operator ignores) ----
def test_sweep_covers_diagnose_and_docs() -> None:
    ids = {s.id: s for s in SPECS}
    viewer = (
        "diagnose",
        "diagnose.again",
        "diagnose.score",
        "diagnose.export",
        "docs",
        "docs.home",
        "docs.show",
        "docs.tutorial",
        "docs.tutorial_check",
        "docs.tutorials",  # h17tut: the list of tutorials
    )
    assert {k: ids[k].level for k in viewer} == dict.fromkeys(viewer, LEVEL["viewer"])
    assert ids["diagnose.ignore"].level == LEVEL["operator"]
    # h17fix: a settings fix's preview and Apply are an operator's; the key a declared rule
    assert ids["diagnose.fix"].level == ids["diagnose.fix_apply"].level == LEVEL["operator"]
    assert {s.id for s in WITH_PARAMS} >= {
        "diagnose.fix",
        "diagnose.fix_apply",
        "diagnose.ignore",
        "docs.show",
        "docs.tutorial",
        "docs.tutorial_check",  # h17tut: tutorial id and step are declared params
    }
