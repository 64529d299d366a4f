"""Fleet settings from chat/shell: validated, versioned, audited, undoable, and honoured by a
running fleet from its very next decision (both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from piyasa.db.fleetadmin_models import SettingChange as ChangeRow
from piyasa.db.models import AuditEntry, Message, Setting
from piyasa.db.runtime_models import OutboxItem
from piyasa.fleetadmin import settings as fs
from piyasa.runtime.fleet import Fleet
from piyasa.runtime.llm import OfflineProvider
from tests.runtime.conftest import clock, sandbox  # noqa: F401  (fixtures)
from tests.runtime.helpers import namespace, seed, with_sandbox
from tests.waiting import until


async def rows(services, model) -> int:  # type: ignore[no-untyped-def]
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_change_is_versioned_audited_and_undone(services) -> None:
    first = await fs.change_setting(services, "scale_factor", "2,5", actor="ayse", reason="busy")
    assert (first.old, first.new, first.version) == (1.0, 2.5, 1)
    second = await fs.change_setting(services, "scale_factor", 3, actor="mehmet")
    assert (second.old, second.new, second.version) == (2.5, 3.0, 2)
    assert (await fs.get(services, "scale_factor")).value == 3.0
    async with services.sessions() as session:
        audited = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "settings.set")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(a.actor, a.target, a.params["old"], a.params["new"]) for a in audited] == [
        ("ayse", "scale_factor", 1.0, 2.5),
        ("mehmet", "scale_factor", 2.5, 3.0),
    ]
    undone = await fs.undo_last(services, "scale_factor", actor="ayse")
    assert (undone.old, undone.new, undone.version, undone.undo_of) == (3.0, 2.5, 3, second.id)
    assert (await fs.get(services, "scale_factor")).value == 2.5
    # the next undo goes one further back, to the value before the first change
    again = await fs.undo_last(services, None, actor="ayse")
    assert again.undo_of == first.id and (await fs.get(services, "scale_factor")).value == 1.0
    with pytest.raises(fs.SettingError) as err:
        await fs.undo_last(services, "scale_factor", actor="ayse")
    assert err.value.key == "settings.err.nothing_to_undo"
    hist = await fs.history(services, "scale_factor", 10)
    assert [h.new for h in hist] == [1.0, 2.5, 3.0, 2.5]


@pytest.mark.parametrize(
    ("key", "raw", "error"),
    [
        ("scale_factor", "11", "settings.err.range"),
        ("scale_factor", "-1", "settings.err.range"),
        ("scale_factor", "lots", "settings.err.number"),
        ("scale_factor", "nan", "settings.err.number"),
        ("llm_temperature", "2.5", "settings.err.range"),
        ("default_language", "de", "settings.err.choice"),
        ("reply_first", "maybe", "settings.err.bool"),
        ("llm_model", "gpt 4o; drop", "settings.err.model"),
        ("llm_base_url", "ftp://x", "settings.err.url"),
        ("fleet_footer", "x" * 201, "settings.err.too_long"),
        ("no_such_key", "1", "settings.err.unknown"),
    ],
)
async def test_bad_values_are_refused_and_change_nothing(services, key, raw, error) -> None:
    with pytest.raises(fs.SettingError) as err:
        await fs.change_setting(services, key, raw, actor="ayse")
    assert err.value.key == error
    assert await rows(services, Setting) == 0 and await rows(services, ChangeRow) == 0


async def test_a_change_on_top_of_another_is_refused(services) -> None:
    seen = (await fs.get(services, "max_msgs_per_min")).version
    await fs.change_setting(services, "max_msgs_per_min", 30, actor="mehmet")
    with pytest.raises(fs.SettingError) as err:
        await fs.change_setting(
            services, "max_msgs_per_min", 90, actor="ayse", expected_version=seen
        )
    assert err.value.key == "settings.err.stale"
    assert (await fs.get(services, "max_msgs_per_min")).value == 30.0


async def test_running_fleet_honours_a_change_from_its_next_decision(services, sandbox) -> None:  # noqa: F811
    """The fleet's own refresh is slow here (60 s): only the change's nudge to the running
    fleet's settings store can make the first later decision carry the new footer."""
    await seed(services, sandbox, bots=3, chats=2)
    with_sandbox(services, sandbox.base_url)
    fleet = Fleet(
        services,
        receive="off",
        limiter_namespace=namespace(),
        provider=OfflineProvider(seed=3),
        settings_refresh_s=60.0,
    )
    await fleet.control.set_max_msgs_per_min(600)
    # the control surface and /settings share one range (the catalogue's 0 – 10)
    spec = fs.SETTING_SPECS["scale_factor"]
    for outside in (spec.max + 0.5, -1, 100):
        with pytest.raises(ValueError, match="scale_factor"):
            await fleet.control.set_scale(outside)
    with pytest.raises(ValueError, match="max_msgs_per_min"):
        await fleet.control.set_max_msgs_per_min(601)
    assert fleet.settings_store.number("scale_factor") == 1.0  # nothing changed
    assert await fleet.control.set_scale(spec.max) == spec.max
    await fleet.control.set_scale(1)
    services.extras["fleet"] = fleet
    await fleet.start()
    try:
        await until(lambda: len(sandbox.calls("sendMessage")) >= 2, "chatter before the change")
        await fs.change_setting(services, "fleet_footer", "Piyasa v2 — bilgi amaçlıdır", actor="a")
        after = fleet.wall()

        async def later() -> list[str]:
            async with services.sessions() as session:
                texts = await session.scalars(
                    select(Message.text)
                    .join(OutboxItem, OutboxItem.message_id == Message.id)
                    .where(OutboxItem.decided_at > after)
                )
                got = list(texts)
            return got if len(got) >= 3 else []

        texts = await until(later, "three decisions after the change")
        assert all("Piyasa v2 — bilgi amaçlıdır" in t for t in texts), texts
    finally:
        services.extras.pop("fleet", None)
        await fleet.stop()
