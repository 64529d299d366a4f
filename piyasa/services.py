"""The shared service container every surface receives (one core, many surfaces)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from piyasa.cache import MemoryCache, RedisCache, make_cache
from piyasa.config import Settings
from piyasa.crypto import SecretBox
from piyasa.db.engine import create_engine, make_sessionmaker


@dataclass
class Services:
    """Long-lived dependencies, built once per process and closed on shutdown."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: MemoryCache | RedisCache
    box: SecretBox
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, *, engine: AsyncEngine | None = None) -> Services:
        engine = engine or create_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            cache=make_cache(settings.redis_url),
            box=SecretBox(settings.secret_key.reveal()),
        )

    async def close(self) -> None:
        checker = self.extras.get("db.availability")  # piyasa.db.availability
        if checker is not None:
            await checker.stop()
        await self.cache.close()
        await self.engine.dispose()
