"""Two deployments on one Redis keep their own gate buckets; two instances of one
deployment share theirs (real Redis; the scope is the database URL's, as for leases)."""

from __future__ import annotations

from piyasa.config import load_settings
from piyasa.runtime.buckets import DeliveryLimits, SendKey
from piyasa.runtime.shared_limits import fleet_limiter
from piyasa.services import Services
from tests.conftest import REDIS_URL, SKIP_REDIS, _redis_up, skip_or_fail

KEY = SendKey(bot_id=1, chat_id=-100123, is_group=True)


def _services(tmp_path, database: str) -> Services:  # type: ignore[no-untyped-def]
    env = {
        "PIYASA_DATA_DIR": str(tmp_path / database),
        "PIYASA_DATABASE_URL": f"postgresql://piyasa@127.0.0.1:5432/{database}",
        "PIYASA_REDIS_URL": REDIS_URL,
    }
    return Services.build(load_settings(env))


async def test_deployments_sharing_redis_do_not_share_buckets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not _redis_up():
        skip_or_fail(SKIP_REDIS)
    limits = DeliveryLimits()
    a1, a2 = _services(tmp_path, "deploy_a"), _services(tmp_path, "deploy_a")
    b = _services(tmp_path, "deploy_b")
    limiters = [fleet_limiter(s, limits, "piyasa:gate:test:", None) for s in (a1, a2, b)]
    try:
        await limiters[0].clear()
        await limiters[2].clear()
        waits = [await limiters[0].acquire_many([KEY]) for _ in range(limits.group_max + 1)]
        assert waits[-1][0] > 0  # deployment A's group bucket is spent
        assert (await limiters[1].peek_many([KEY]))[0] > 0  # A's other instance sees it
        assert (await limiters[2].peek_many([KEY]))[0] == 0  # deployment B does not
    finally:
        for lim in limiters:
            await lim.clear()
            await lim.close()
        for s in (a1, a2, b):
            await s.engine.dispose()
