"""The control surface the admin bots, Slack and the CLI call; plain async methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from piyasa.runtime.fleet import Fleet


def checked(key: str, raw: Any) -> Any:
    """``raw`` parsed and range-checked by the one catalogue of changeable settings
    (``piyasa.fleetadmin.settings``); ValueError with its reason otherwise."""
    from piyasa.fleetadmin.settings import SettingError, parse_value, spec_of

    try:
        return parse_value(spec_of(key), raw)
    except SettingError as exc:
        raise ValueError(str(exc)) from None


class FleetControl:
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    async def pause(self, actor: str = "operator") -> None:
        """Stop deciding and sending; queued messages stay queued."""
        await self._fleet.settings_store.set("fleet_paused", True, actor)
        self._fleet.apply_settings()
        await self._announce("settings")
        if self._fleet.gate is not None:  # return only once no send is starting any more
            await self._fleet.gate.quiesce()

    async def resume(self, actor: str = "operator") -> None:
        await self._fleet.settings_store.set("fleet_paused", False, actor)
        self._fleet.apply_settings()
        await self._announce("settings")

    async def restart_workers(self) -> int:
        """Restart the generation workers (and the planner); returns how many."""
        return await self._fleet.supervisor.restart("workers")

    async def _announce(self, topic: str, payload: dict[str, Any] | None = None) -> None:
        """Tell the other instances (piyasa.cluster.changes); nothing on SQLite."""
        from piyasa.cluster.changes import announce

        await announce(self._fleet.services, topic, payload)

    def reset_breaker(self, bot_id: int | None = None, *, broadcast: bool = True) -> int:
        """Close one bot's breaker (``bot_id``), or every bot's and the LLM's (None).

        Closing a breaker only lets calls through again; it is not a recovery. The LLM is
        probed at once, and its health turns healthy only when a call gets an answer.
        ``broadcast``: also on the other instances (False when applying theirs).
        """
        n = self._fleet.bot_breakers.reset(bot_id)
        if bot_id is None and self._fleet.generator is not None:
            self._fleet.generator.breaker.reset()
            self._fleet.llm_watch.poke()
            n += 1
        self._fleet.gate.notify() if self._fleet.gate else None
        if broadcast:
            from piyasa.cluster.changes import announce_soon

            announce_soon(self._fleet.services, "breaker", {"bot": bot_id})
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
        """Set ``scale_factor``; ValueError outside its range in the settings catalogue
        (``piyasa.fleetadmin.settings.SETTING_SPECS``, what /settings shows)."""
        value = float(checked("scale_factor", factor))
        await self._fleet.settings_store.set("scale_factor", value, actor)
        await self._announce("settings")
        return value

    async def set_max_msgs_per_min(self, value: float, actor: str = "operator") -> float:
        """Set ``max_msgs_per_min``; ValueError outside its range in the catalogue."""
        number = float(checked("max_msgs_per_min", value))
        await self._fleet.settings_store.set("max_msgs_per_min", number, actor)
        await self._announce("settings")
        return number

    def status(self) -> dict[str, Any]:
        return self._fleet.snapshot()
