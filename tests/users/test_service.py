"""The user service on SQLite and PostgreSQL: safety rules, before/after audit, bulk,
API keys, MFA, password policy and throttling."""

from __future__ import annotations

import asyncio
import logging

import pyotp
import pytest

from piyasa import logs
from piyasa.admin import audit, auth, passwords
from piyasa.admin import users as svc
from piyasa.admin.health.apikeys import verify_api_key
from piyasa.db.models import ApiKey

A = svc.Actor("boss", user_id=None, surface="cli")


async def _admins(services, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    return [(await svc.add_user(services, f"admin{i}", "admin")).id for i in range(n)]


async def test_last_active_admin_cannot_be_demoted_locked_or_deleted(services) -> None:
    (a0,) = await _admins(services, 1)
    await svc.add_user(services, "locked_admin", "admin")
    await svc.set_locked(services, A, "locked_admin", True)  # a locked admin does not count
    for change in (
        lambda: svc.set_role(services, A, a0, "viewer"),
        lambda: svc.set_locked(services, A, a0, True),
        lambda: svc.delete_user(services, A, a0),
        lambda: svc.bulk_apply(services, A, "lock", [a0]),
    ):
        try:
            plan = await change()
        except svc.UserError as exc:
            assert exc.code == "last_admin"
        else:  # bulk skips instead of failing
            assert plan.affected == [] and plan.skipped == [("admin0", "last_admin")]
    info = await svc.get_user(services, "admin0")
    assert info.role == "admin" and not info.locked
    results = [r.result for r in await audit.recent(services, 20, target="admin0")]
    assert results.count("refused_last_admin") == 3


async def test_two_admins_demoting_each_other_at_once_leave_one(services) -> None:
    a0, a1 = await _admins(services, 2)
    outcome = await asyncio.gather(
        svc.set_role(services, svc.Actor("admin1", a1), a0, "viewer"),
        svc.set_role(services, svc.Actor("admin0", a0), a1, "viewer"),
        return_exceptions=True,
    )
    assert sum(isinstance(o, str) for o in outcome) == 1, outcome
    assert all(isinstance(o, str) or isinstance(o, svc.UserError | Exception) for o in outcome)
    roles = [(await svc.get_user(services, n)).role for n in ("admin0", "admin1")]
    assert roles.count("admin") == 1


async def test_nobody_locks_themselves_out(services) -> None:
    a0, _a1 = await _admins(services, 2)
    me = svc.Actor("admin0", a0, "telegram", identity=("telegram", "555"))
    for change in (
        lambda: svc.set_locked(services, me, a0, True),
        lambda: svc.set_role(services, me, a0, "viewer"),
        lambda: svc.delete_user(services, me, a0),
        lambda: svc.terminate_all(services, me, a0),
    ):
        with pytest.raises(svc.UserError) as err:
            await change()
        assert err.value.code == "self"
    await svc.add_user(services, "withid", "viewer", telegram_id=555)
    card = await svc.card(services, "withid")
    me2 = svc.Actor("withid", card.id, "telegram", identity=("telegram", "555"))
    with pytest.raises(svc.UserError):
        await svc.unlink_identity(services, me2, card.id, card.identities[0].id)
    plan = await svc.bulk_preview(services, me, "delete", [a0, _a1])
    assert plan.affected == ["admin1"] and plan.skipped == [("admin0", "self")]


async def test_changes_are_audited_with_before_and_after(services) -> None:
    await _admins(services, 1)
    await svc.add_user(services, "ayse", "viewer")
    await svc.set_role(services, A, "ayse", "operator")
    await svc.set_locked(services, A, "ayse", True)
    await svc.set_must_change(services, A, "ayse", True)
    rows = {r.action: r for r in await audit.recent(services, 10, target="ayse")}
    assert rows["user.role"].params == {"before": {"role": "viewer"}, "after": {"role": "operator"}}
    assert rows["user.lock"].params == {"before": {"locked": False}, "after": {"locked": True}}
    assert rows["user.force_password_change"].params["after"] == {"must_change": True}
    assert rows["user.add"].params["after"]["role"] == "viewer"
    await svc.bulk_apply(services, A, "unlock", [(await svc.get_user(services, "ayse")).id])
    (row,) = await audit.recent(services, 1, target="ayse")
    assert row.params == {"before": {"locked": True}, "after": {"locked": False}, "bulk": True}


async def test_list_search_filters_sort_and_pages(services) -> None:
    for i in range(30):
        await svc.add_user(services, f"u{i:02d}", ("viewer", "operator", "admin")[i % 3])
    await svc.set_locked(services, A, "u01", True)
    await svc.set_must_change(services, A, "u02", True)
    page = await svc.query_users(services, per_page=25, page=2)
    assert page.total == 30 and page.pages == 2 and next(r.username for r in page.rows) == "u25"
    assert (await svc.query_users(services, search="U1")).total == 10
    assert (await svc.query_users(services, search="%")).total == 0  # LIKE is escaped
    assert (await svc.query_users(services, role="admin")).total == 10
    assert [r.username for r in (await svc.query_users(services, status="locked")).rows] == ["u01"]
    must = (await svc.query_users(services, status="must_change")).rows
    assert [r.username for r in must] == ["u02"] and must[0].status == "must_change"
    newest = await svc.query_users(services, sort="created")
    assert newest.rows[0].username == "u29"
    await passwords.check_login(services, "u05", "whatever-wrong")  # no password: no login
    assert (await svc.query_users(services, per_page=50, page=9)).page == 1


async def test_api_key_shown_once_only_hash_and_prefix_stored(services) -> None:
    await svc.add_user(services, "robot", "viewer")
    name, key, prefix = await svc.regenerate_api_key(services, A, "robot")
    assert name == "robot" and key.startswith(prefix) and len(key) > 40
    owner = await verify_api_key(services.sessions, key)
    assert owner is not None and owner.username == "robot"
    _, key2, _ = await svc.regenerate_api_key(services, A, "robot")
    assert await verify_api_key(services.sessions, key) is None  # the old one is revoked
    card = await svc.card(services, "robot")
    assert len(card.api_keys) == 1
    await svc.revoke_api_key(services, A, "robot", card.api_keys[0].id)
    assert await verify_api_key(services.sessions, key2) is None
    async with services.sessions() as s:
        from sqlalchemy import select

        stored = [(k.key_hash, k.prefix) for k in (await s.scalars(select(ApiKey))).all()]
    assert all(key not in h and key2 not in h and len(p) == 10 for h, p in stored)


async def test_mfa_is_active_only_after_a_code_and_reset_ends_step_up(services) -> None:
    info = await svc.add_user(services, "mert", "operator")
    seed, uri = await svc.mfa_begin(services, info.id)
    assert uri.startswith("otpauth://totp/") and seed in uri
    assert (await svc.card(services, "mert")).mfa == "pending"
    assert not await svc.mfa_confirm(services, A, info.id, "000000")
    assert await svc.mfa_confirm(services, A, info.id, pyotp.TOTP(seed).now())
    assert (await svc.card(services, "mert")).mfa == "on"
    with pytest.raises(svc.UserError):
        await svc.mfa_begin(services, info.id)
    await auth.grant_elevation(services, info.id)
    assert (await svc.card(services, "mert")).elevated_until is not None
    await svc.mfa_reset(services, A, "mert")
    assert (await svc.card(services, "mert")).mfa == "off"
    assert not await auth.is_elevated(services, info.id)


async def test_temporary_password_must_change_and_throttling(services) -> None:
    await svc.add_user(services, "ops", "operator", password="a perfectly fine one")
    _name, temp = await svc.reset_password(services, A, "ops")
    first = await passwords.check_login(services, "ops", temp)
    assert first.ok and first.must_change
    with pytest.raises(svc.UserError) as err:
        await svc.change_own_password(services, A, "ops", temp, "password1234")
    assert err.value.code == "password_common"
    await svc.change_own_password(services, A, "ops", temp, "a brand new passphrase")
    assert not (await passwords.check_login(services, "ops", "a brand new passphrase")).must_change
    # failures: free ones, then a growing delay even for the right password
    strict = passwords.Throttle(free_failures=2, base_delay_s=60, max_per_hour=100)
    for _ in range(2):
        r = await passwords.check_login(services, "ops", "wrong", throttle=strict)
        assert r.reason == "invalid"
    r = await passwords.check_login(services, "ops", "a brand new passphrase", throttle=strict)
    assert r.reason == "throttled" and 55 <= r.retry_after_s <= 60
    card = await svc.card(services, "ops")
    assert card.failures.streak == 2 and card.failures.last_hour == 2
    # the hourly cap holds regardless of delays
    capped = passwords.Throttle(free_failures=10_000, max_per_hour=3)
    r = await passwords.check_login(services, "ops", "wrong", throttle=capped)
    assert r.reason == "invalid"
    r = await passwords.check_login(services, "ops", "a brand new passphrase", throttle=capped)
    assert r.reason == "throttled" and r.retry_after_s > 3500
    assert await passwords.count_failures(services, "ops") == 3
    # unlocking clears the streak (the hourly window stays)
    await svc.set_locked(services, A, "ops", True)
    assert (await passwords.check_login(services, "ops", "x")).reason == "locked"
    await svc.set_locked(services, A, "ops", False)
    assert (await svc.card(services, "ops")).failures.streak == 0


def test_growing_delays_never_allow_100_failures_in_any_hour() -> None:
    t = passwords.THROTTLE
    now, streak, last, attempts = 0.0, 0, None, []
    while now < 6 * 3600:  # an attacker retrying the moment it is allowed, for six hours
        wait = 0.0 if last is None else max(t.delay_after(streak) - (now - last), 0.0)
        now += wait
        attempts.append(now)
        streak, last = streak + 1, now
        now += 0.01
    worst = max(sum(1 for b in attempts if a <= b < a + 3600) for a in attempts)
    assert worst <= t.max_per_hour and worst < 20
    assert [t.delay_after(n) for n in range(3, 7)] == [2, 4, 8, 16]


def test_password_policy_and_hash_parameters() -> None:
    assert passwords.problem("short") == "too_short"
    for weak in ("password1234", "Password1234!", "qwertyqwerty", "aaaaaaaaaaaa"):
        assert passwords.problem(weak) == "common", weak
    assert passwords.problem("1234dragon5678!") == "common"
    assert passwords.problem("mert-is-the-best", "mert") == "contains_username"
    assert passwords.problem("Kırmızı-balık-uçar-7") is None
    assert len(passwords.common_passwords()) == 30_000
    temp = passwords.generate_temporary()
    assert passwords.problem(temp) is None and len(temp) == 19
    h = auth.hash_password("correct horse battery staple")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_no_secret_reaches_logs_or_audit(services) -> None:
    root = logging.getLogger()
    old = root.level
    attached = logs.RING in root.handlers  # setup_logging put it there: leave it
    root.addHandler(logs.RING)
    root.setLevel(logging.DEBUG)
    logs.RING.lines.clear()
    try:
        info = await svc.add_user(services, "zed", "admin", password="my own secret phrase")
        await svc.add_user(services, "zed2", "admin")
        _, temp = await svc.reset_password(services, A, "zed")
        _, key, _ = await svc.regenerate_api_key(services, A, "zed")
        seed, _uri = await svc.mfa_begin(services, info.id)
        await svc.mfa_confirm(services, A, info.id, pyotp.TOTP(seed).now())
        await passwords.check_login(services, "zed", temp)
        await passwords.check_login(services, "zed", "my own secret phrase")
        await svc.change_own_password(services, A, "zed", temp, "another fine phrase!")
    finally:
        if not attached:
            root.removeHandler(logs.RING)
        root.setLevel(old)
    secrets = ["my own secret phrase", temp, key, seed, "another fine phrase!"]
    lines = "\n".join(logs.RING.lines)
    rows = await audit.recent(services, 500)
    dumped = "\n".join(f"{r.params} {r.detail} {r.target}" for r in rows)
    assert rows and all(s not in lines and s not in dumped for s in secrets)
