"""The control surface the admin bots, Slack and the CLI call; plain async methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from piyasa.runtime.fleet import Fleet


class FleetControl:
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    async def pause(self, actor: str = "operator") -> None:
        """Stop deciding and sending; queued messages stay queued."""
        await self._fleet.settings_store.set("fleet_paused", True, actor)
        self._fleet.apply_settings()
        if self._fleet.gate is not None:  # return only once no send is starting any more
            await self._fleet.gate.quiesce()

    async def resume(self, actor: str = "operator") -> None:
        await self._fleet.settings_store.set("fleet_paused", False, actor)
        self._fleet.apply_settings()

    async def restart_workers(self) -> int:
        """Restart the generation workers (and the planner); returns how many."""
        return await self._fleet.supervisor.restart("workers")

    def reset_breaker(self, bot_id: int | None = None) -> int:
        """Close one bot's breaker (``bot_id``), or every bot's and the LLM's (None).

        Closing a breaker only lets calls through again; it is not a recovery. The LLM is
        probed at once, and its health turns healthy only when a call gets an answer.
        """
        n = self._fleet.bot_breakers.reset(bot_id)
        if bot_id is None and self._fleet.generator is not None:
            self._fleet.generator.breaker.reset()
            self._fleet.llm_watch.poke()
            n += 1
        self._fleet.gate.notify() if self._fleet.gate else None
        return n

    async def enable(
        self, bot_id: int, chat_id: int | None = None, actor: str = "operator"
    ) -> bool:
        """Re-enable a bot (``chat_id`` None) or one bot in one chat that the fleet disabled
        (kicked, chat gone, token revoked, bad schedule); True when something changed. If
        the cause is still there, the fleet disables it again, with a fresh event."""
        changed = await self._fleet.disabler.enable(bot_id, chat_id, actor)
        await self._fleet.reload_roster()
        return changed

    async def set_scale(self, factor: float, actor: str = "operator") -> float:
        if not 0 <= float(factor) <= 100:
            raise ValueError("scale factor must be between 0 and 100")
        await self._fleet.settings_store.set("scale_factor", float(factor), actor)
        return float(factor)

    async def set_max_msgs_per_min(self, value: float, actor: str = "operator") -> float:
        if float(value) < 0:
            raise ValueError("max_msgs_per_min cannot be negative")
        await self._fleet.settings_store.set("max_msgs_per_min", float(value), actor)
        return float(value)

    def status(self) -> dict[str, Any]:
        return self._fleet.snapshot()
