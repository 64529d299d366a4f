"""A second process serving the Slack app, for tests of what instances share.

    python -m tests.chatops.slack_proc DATA_DIR API_URL REDIS_URL NAMESPACE

Serves /slack/events on a free port of 127.0.0.1 with its own SQLite database and the
given Redis (under NAMESPACE), prints ``READY <port>`` and runs until stdin closes.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


async def main(data_dir: str, api_url: str, redis_url: str, namespace: str) -> None:
    from chatops.slack.surface import SlackSurface
    from chatops.web.server import make_web_app, start_web
    from piyasa.cache import RedisCache
    from piyasa.config import load_settings
    from piyasa.db.base import Base
    from piyasa.db.engine import create_engine
    from piyasa.services import Services
    from tests.chatops.slack_server import BOT_TOKEN, SIGNING_SECRET

    settings = load_settings({"PIYASA_DATA_DIR": data_dir, "PIYASA_LANG": "en"})
    engine = create_engine(f"sqlite+aiosqlite:///{Path(data_dir) / 'proc.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    services = Services.build(settings, engine=engine)
    await services.cache.close()
    services.cache = RedisCache(redis_url, namespace=namespace)
    surface = SlackSurface(
        services, token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=api_url
    )
    app = make_web_app(services)
    surface.mount(app)
    await surface.start()
    runner, port = await start_web(app, "127.0.0.1", 0)
    print(f"READY {port}", flush=True)
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await runner.cleanup()
        await surface.stop()
        await services.close()


if __name__ == "__main__":
    Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
    asyncio.run(main(*sys.argv[1:5]))
