"""Runtime-changeable fleet settings, read from the ``settings`` table every few seconds.

Operators change ``max_msgs_per_min`` or ``scale_factor`` from chat; the fleet applies the
new value at its next refresh (``refresh_s``, 2 s by default) without a restart. Values
are JSON; unknown keys are kept so other capabilities may share the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from piyasa.db.base import utcnow
from piyasa.db.models import Setting

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "max_msgs_per_min": 12.0,  # fleet-wide chatter budget, before scale_factor
    "scale_factor": 1.0,
    "fleet_paused": False,
    "fleet_workers": 8,  # concurrent generations
    "global_max_per_s": 200,  # fleet-wide Telegram sends per second
    "history_size": 12,
    "footer_enabled": True,
    "fleet_footer": "",  # footer of bots whose persona has none ("" -> none)
    "default_language": "tr",  # language of bots whose persona names none
    "reply_first": True,  # replies before chatter, borrowing from the budget (planner)
    "llm_temperature": 0.9,
    "outbox_ambiguous_policy": "resend",  # or "fail"; see piyasa.runtime.outbox
    "llm_model": "",  # "" -> PIYASA_LLM_MODEL
    "llm_base_url": "",  # "" -> OPENAI_BASE_URL
    "llm_api_key_encrypted": "",  # SecretBox ciphertext; "" -> OPENAI_API_KEY
    "llm_timeout_s": 30.0,
    "llm_prices": {},  # merged over piyasa.runtime.llm.DEFAULT_PRICES
    "reply_max_age_s": 3600,
    "fleet_receive_mode": "polling",  # polling | webhook | off
    "fleet_webhook_url": "",  # public base URL for webhook mode
    # piyasa.fleetadmin.autoadjust: a 429 trend lowers scale_factor, never below the
    # operator's floor, and returns it to the operator's value once 429s stop
    "autoadjust_enabled": True,
    "autoadjust_min_scale": 0.1,
    "autoadjust_trigger_429": 3,  # 429s within a minute that make a trend
    "autoadjust_operator_scale": None,  # the operator's value while lowered, else None
}


class SettingsStore:
    """A cached view of the settings table with typed accessors and periodic refresh."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        overrides: Mapping[str, Any] | None = None,
        refresh_s: float = 2.0,
    ) -> None:
        self.sessions = sessions
        self.refresh_s = refresh_s
        self._overrides = dict(overrides or {})
        self._db: dict[str, Any] = {}
        self.version = 0
        self.changed = asyncio.Event()

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._overrides:
            return self._overrides[key]
        if key in self._db:
            return self._db[key]
        return DEFAULTS.get(key, default)

    def number(self, key: str) -> float:
        try:
            return float(self.get(key))
        except (TypeError, ValueError):
            return float(DEFAULTS[key])

    def values(self) -> dict[str, Any]:
        return {**DEFAULTS, **self._db, **self._overrides}

    async def refresh(self) -> bool:
        """Reload from the table; True when something changed."""
        async with self.sessions() as session:
            rows = (await session.execute(select(Setting.key, Setting.value))).all()
        fresh = {k: v for k, v in rows}
        if fresh != self._db:
            self._db = fresh
            self.version += 1
            self.changed.set()
            return True
        return False

    async def set(self, key: str, value: Any, actor: str = "runtime") -> None:
        """Write a setting (version bumped) and apply it locally at once."""
        async with self.sessions() as session, session.begin():
            row = await session.get(Setting, key)
            if row is None:
                session.add(Setting(key=key, value=value, version=1, updated_by=actor))
            else:
                row.value = value
                row.version += 1
                row.updated_by = actor
                row.updated_at = utcnow()
        self._db[key] = value
        self.version += 1
        self.changed.set()

    async def run(self) -> None:
        """Refresh forever (a supervised worker)."""
        while True:
            await asyncio.sleep(self.refresh_s)
            with contextlib.suppress(Exception):
                await self.refresh()
