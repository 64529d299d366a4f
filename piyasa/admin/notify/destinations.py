"""Configured channels (email, webhook, Apprise): stored in ``notify_channels`` with the
configuration sealed by ``services.box`` (it holds SMTP passwords and webhook secrets),
built and checked through the channel factory so bad configuration is refused when it
is given — with the channel's own words about what to fix — never at the first alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from piyasa.admin.notify.outbox import ChannelFactory, open_config, seal_config, unknown_channel
from piyasa.admin.notify.routing import NAME
from piyasa.admin.notify.rules import NotifyError
from piyasa.db.notify_models import NotifyChannel
from piyasa.services import Services

SECRET_WORDS = ("password", "secret", "token", "key", "url")


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    kind: str
    enabled: bool
    config: dict[str, str]  # masked: secret values shown as ****

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "enabled": self.enabled,
            "config": self.config,
        }


def masked(config: dict[str, str]) -> dict[str, str]:
    """``config`` with every value that may be a secret replaced by ``****``."""
    return {
        k: ("****" if any(w in k.lower() for w in SECRET_WORDS) and v else v)
        for k, v in config.items()
    }


async def add_channel(
    services: Services,
    name: str,
    kind: str,
    config: dict[str, str],
    factory: ChannelFactory,
    *,
    check: bool = True,
) -> list[str]:
    """Store channel ``name``; NotifyError ``bad_name``/``channel_exists``/
    ``bad_channel`` (the factory's message, or what ``check()`` found; its ``problems``
    param holds them, as translatable ``Problem`` strings where the channel gave
    one) — nothing stored."""
    name = name.strip().lower()
    if not NAME.match(name):
        raise NotifyError("bad_name", f"{name!r} is not a name (a-z, 0-9, _ . -)", value=name)
    try:
        channel = factory(kind, name, config)
    except ValueError as exc:
        problem = getattr(exc, "problem", None)
        raise NotifyError(
            "bad_channel", str(exc), value=name, reason=str(exc), problems=[problem or str(exc)]
        ) from None
    problems = await channel.check() if check else []
    if problems:
        text = "; ".join(problems)
        raise NotifyError("bad_channel", text, value=name, reason=text, problems=problems)
    async with services.sessions() as session, session.begin():
        if await session.get(NotifyChannel, name) is not None:
            raise NotifyError("channel_exists", f"a channel named {name!r} exists", value=name)
        session.add(
            NotifyChannel(
                name=name, kind=kind, config_encrypted=seal_config(services, config), enabled=True
            )
        )
    return problems


async def channels(services: Services) -> list[ChannelInfo]:
    async with services.sessions() as session:
        rows = list(await session.scalars(select(NotifyChannel).order_by(NotifyChannel.name)))
    return [
        ChannelInfo(r.name, r.kind, r.enabled, masked(open_config(services, r.config_encrypted)))
        for r in rows
    ]


async def build(services: Services, name: str, factory: ChannelFactory) -> Any:
    """The channel ``name`` built from its stored configuration; NotifyError
    ``unknown_channel`` when there is none."""
    async with services.sessions() as session:
        row = await session.get(NotifyChannel, name.strip().lower())
    if row is None:
        raise unknown_channel(name)
    return factory(row.kind, row.name, open_config(services, row.config_encrypted))


async def remove_channel(services: Services, name: str) -> None:
    async with services.sessions() as session, session.begin():
        row = await session.get(NotifyChannel, name.strip().lower())
        if row is None:
            raise unknown_channel(name)
        await session.delete(row)
