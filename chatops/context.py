"""What a command handler receives: who asks, in which language, where, with what.

Handlers name what they need from ``ctx``; capability modules reach their own services
through ``ctx.extras`` (``services.extras``: fleet control, health, …) so the core never
imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chatops import i18n
from chatops.views import Button, View
from piyasa.admin import audit as audit_log
from piyasa.admin.identity import Principal
from piyasa.services import Services

if TYPE_CHECKING:
    from chatops.commands.registry import Registry, Spec


@dataclass
class Invocation:
    """One request to run a spec; serialisable so it can wait for a step-up."""

    spec_id: str
    args_text: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    confirmed: bool = False
    is_press: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec_id": self.spec_id,
            "args_text": self.args_text,
            "params": self.params,
            "confirmed": self.confirmed,
            "is_press": self.is_press,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invocation:
        return cls(**data)


@dataclass(frozen=True)
class MessageRef:
    """A message a surface sent, so it can be edited later (live views)."""

    surface: str
    chat: str
    message: str


class Responder(Protocol):
    """How a surface shows Views. ``show`` edits the pressed message for button presses;
    ``send_private`` returns None when the user cannot be reached privately (on Telegram,
    until they have started the bot); ``reach_private`` says beforehand whether it would
    be delivered, without sending anything the user reads."""

    async def show(self, view: View, *, edit: bool = False) -> MessageRef | None: ...
    async def send(self, view: View) -> MessageRef | None: ...
    async def edit(self, ref: MessageRef, view: View) -> MessageRef | None: ...
    async def send_private(self, view: View) -> MessageRef | None: ...
    async def reach_private(self) -> bool: ...


@dataclass
class Client:
    """The chat account behind a request, linked or not."""

    provider: str  # "telegram" | "slack"
    external_id: str
    display_name: str = ""
    language: str | None = None


@dataclass
class Context:
    services: Services
    registry: Registry
    surface: str
    client: Client
    actor: Principal | None
    lang: str
    chat_id: str
    chat_private: bool
    invocation: Invocation | None = None
    spec: Spec | None = None
    args: dict[str, str] = field(default_factory=dict)
    responder: Responder | None = None
    target: str | None = None
    audit_params: dict[str, Any] = field(default_factory=dict)
    elevated: bool = False
    input_problem: Any = None  # chatops.inputs.Problem: refused at check_args
    # which declared bootstrap rule let this request in below the spec's role (authorize)
    via_bootstrap: str | None = None
    # others in the chat saw what the user typed; None: everyone in a non-private chat
    # did (Telegram); a Slack slash command's text is seen by the app alone
    input_seen_by_chat: bool | None = None

    # -- language -------------------------------------------------------------
    def t(self, key: str, /, **kwargs: object) -> str:
        return i18n.t(self.lang, key, **kwargs)

    # -- dependencies ---------------------------------------------------------
    @property
    def extras(self) -> dict[str, Any]:
        return self.services.extras

    @property
    def level(self) -> int:
        return self.actor.level if self.actor else 0

    @property
    def params(self) -> dict[str, Any]:
        return self.invocation.params if self.invocation else {}

    @property
    def input_exposed(self) -> bool:
        """Whether people other than the caller saw what the caller typed."""
        if self.input_seen_by_chat is not None:
            return self.input_seen_by_chat
        return not self.chat_private

    @property
    def secret_visible(self) -> bool:
        """A message holding a secret could not be deleted from this chat: it stays there,
        readable by everyone in it (Telegram, when the bot is no group admin)."""
        return bool(getattr(self.responder, "secret_visible", False))

    @property
    def actor_label(self) -> str:
        if self.actor:
            return self.actor.username
        return f"{self.client.provider}:{self.client.external_id}"

    # -- building views -------------------------------------------------------
    def button(self, label: str, action: str, *, style: str = "default", **params: Any) -> Button:
        """A button for ``action``; a bare name means an action of the current command."""
        if "." not in action and self.spec is not None and action not in self.registry.commands:
            action = f"{self.spec.command_name}.{action}"
        return Button(label=label, action=action, params=params, style=style)  # type: ignore[arg-type]

    # -- talking back outside the returned View --------------------------------
    async def send(self, view: View) -> MessageRef | None:
        assert self.responder is not None
        return await self.responder.send(view)

    async def edit(self, ref: MessageRef, view: View) -> MessageRef | None:
        assert self.responder is not None
        return await self.responder.edit(ref, view)

    async def send_private(self, view: View) -> MessageRef | None:
        assert self.responder is not None
        return await self.responder.send_private(view)

    async def reach_private(self) -> bool:
        assert self.responder is not None
        return await self.responder.reach_private()

    async def audit(
        self,
        action: str,
        result: str,
        *,
        target: str | None = None,
        params: dict[str, Any] | None = None,
        detail: str | None = None,
    ) -> None:
        """An extra audit row (e.g. a before/after of a change) attributed to the caller."""
        await audit_log.record(
            self.services,
            actor=self.actor_label,
            actor_user_id=self.actor.user_id if self.actor else None,
            surface=self.surface,
            action=action,
            target=target,
            params=params,
            result=result,
            detail=detail,
        )
