"""Multi-step conversations (wizards) with Back, Cancel and resume.

A Dialog belongs to a command; binding it declares that command's actions ``back``,
``cancel``, ``choose`` (a button answer) and ``input`` (typed text), so every step of a
wizard is authorized, audited and confirmed like any other press. State lives in the cache
(``dialog:<surface>:<user>:<chat>``, Redis-backed when configured, so a restart resumes):
the step index, the answers so far and the path taken (for Back). A dialog given a
``store`` also keeps its state there (e.g. the database), so it resumes after a restart
even on the in-process cache: starting the command again picks the state up.

A step handler returns ``None`` to move on, a catalog key to show a problem, or
:data:`STAY` to stay on the step after changing its state (sub-steps, lists being filled).

Usage::

    wiz = Dialog("adduser", steps=[Step("username", render=..., on_text=...), ...],
                 finish=...)
    @command("adduser", role="admin")
    async def adduser(ctx): return await wiz.start(ctx)
    wiz.bind(adduser)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatops.commands.registry import Arg, Command
from chatops.context import Context
from chatops.views import Alert, Button, View

STATE_TTL_S = 24 * 3600
StepRender = Callable[[Context, dict[str, Any]], Awaitable[View]]
# returns None when accepted (and may edit state), else a catalog key naming the problem
StepInput = Callable[[Context, dict[str, Any], str], Awaitable[str | None]]
Finish = Callable[[Context, dict[str, Any]], Awaitable[View]]

DIALOGS: dict[str, Dialog] = {}


class _Stay(str):
    """Accepted; stay on this step (state saved, step re-rendered)."""


STAY = _Stay("")


class DialogStore(Protocol):
    """Where a dialog's state also lives, beyond the cache (survives restarts)."""

    async def load(self, ctx: Context, key: str) -> dict[str, Any] | None: ...
    async def save(self, ctx: Context, key: str, state: dict[str, Any]) -> None: ...
    async def delete(self, ctx: Context, key: str) -> None: ...


@dataclass
class Step:
    id: str
    render: StepRender
    on_text: StepInput | None = None
    on_choice: StepInput | None = None
    secret: bool = False  # the message holding the answer is deleted from the chat


def _key(ctx: Context) -> str:
    return f"dialog:{ctx.surface}:{ctx.client.external_id}:{ctx.chat_id}"


async def active(ctx: Context) -> dict[str, Any] | None:
    return await ctx.services.cache.get(_key(ctx))


async def cancel_active(ctx: Context) -> bool:
    state = await active(ctx)
    dialog = DIALOGS.get((state or {}).get("dialog", ""))
    if dialog is not None and dialog.store is not None:
        await dialog.store.delete(ctx, _key(ctx))
    return await ctx.services.cache.delete(_key(ctx))


@dataclass
class Dialog:
    name: str
    steps: list[Step]
    finish: Finish
    command: Command | None = field(default=None, repr=False)
    store: DialogStore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        DIALOGS[self.name] = self

    # -- wiring -------------------------------------------------------------------
    def bind(self, cmd: Command, *, role: str | None = None, private_only: bool = False) -> Command:
        """Declare this dialog's actions on ``cmd`` (they inherit its role unless ``role``
        asks for more, e.g. a public command whose wizard is for admins only)."""
        self.command = cmd
        for name, handler in (
            ("back", self._on_back),
            ("cancel", self._on_cancel),
            ("choose", self._on_choose),
            ("input", self._on_input),
        ):
            cmd.action(name, role=role, private_only=private_only)(handler)
        spec = cmd.actions["input"]
        spec.args = (Arg("text", rest=True, secret=True),)
        return cmd

    # -- state --------------------------------------------------------------------
    async def _save(self, ctx: Context, state: dict[str, Any]) -> None:
        await ctx.services.cache.set(_key(ctx), state, ttl=STATE_TTL_S)
        if self.store is not None:
            await self.store.save(ctx, _key(ctx), state)

    async def _state(self, ctx: Context) -> dict[str, Any] | None:
        state = await active(ctx)
        if state is None and self.store is not None:
            state = await self.store.load(ctx, _key(ctx))
            if state and state.get("dialog") == self.name:
                await ctx.services.cache.set(_key(ctx), state, ttl=STATE_TTL_S)
        return state if state and state.get("dialog") == self.name else None

    async def state_data(self, ctx: Context) -> dict[str, Any] | None:
        """The answers so far of this user's running dialog (None when none runs)."""
        state = await self._state(ctx)
        return state["data"] if state else None

    async def reset(self, ctx: Context, data: dict[str, Any] | None = None) -> View:
        """Forget the answers and start again at the first step."""
        await cancel_active(ctx)
        if self.store is not None:
            await self.store.delete(ctx, _key(ctx))
        return await self.start(ctx, data)

    async def start(self, ctx: Context, data: dict[str, Any] | None = None) -> View:
        """Start over, or resume where the user left off if a state exists."""
        state = await self._state(ctx)
        if state is None:
            state = {"dialog": self.name, "step": 0, "data": dict(data or {}), "path": []}
            await self._save(ctx, state)
        return await self._render(ctx, state)

    async def _render(self, ctx: Context, state: dict[str, Any], error: str = "") -> View:
        step = self.steps[state["step"]]
        view = await step.render(ctx, state["data"])
        view.title = view.title or ctx.t(f"dialog.{self.name}.title")
        progress = ctx.t("dialog.progress", n=state["step"] + 1, total=len(self.steps))
        view.blocks.insert(0, Alert("info", progress))
        if error:
            view.blocks.append(Alert("error", ctx.t(error)))
        assert self.command is not None
        nav = []
        if state["path"]:
            nav.append(Button(ctx.t("dialog.back"), action=f"{self.command.id}.back"))
        nav.append(Button(ctx.t("dialog.cancel"), action=f"{self.command.id}.cancel"))
        view.buttons.append(nav)
        return view

    async def _advance(self, ctx: Context, state: dict[str, Any]) -> View:
        state["path"].append(state["step"])
        if state["step"] + 1 >= len(self.steps):
            await cancel_active(ctx)
            return await self.finish(ctx, state["data"])
        state["step"] += 1
        await self._save(ctx, state)
        return await self._render(ctx, state)

    # -- actions ------------------------------------------------------------------
    async def _on_back(self, ctx: Context) -> View:
        state = await self._state(ctx)
        if state is None:
            return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
        if state["path"]:
            state["step"] = state["path"].pop()
            await self._save(ctx, state)
        return await self._render(ctx, state)

    async def _on_cancel(self, ctx: Context) -> View:
        await cancel_active(ctx)
        return View(blocks=[Alert("info", ctx.t("cancelled"))], edit=True)

    async def _on_choose(self, ctx: Context) -> View:
        state = await self._state(ctx)
        if state is None:
            return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
        step = self.steps[state["step"]]
        if step.on_choice is None or ctx.params.get("step") != step.id:
            return await self._render(ctx, state)
        error = await step.on_choice(ctx, state["data"], str(ctx.params.get("v", "")))
        return await self._after(ctx, state, error)

    async def _after(self, ctx: Context, state: dict[str, Any], error: str | None) -> View:
        if error is STAY:
            await self._save(ctx, state)
            return await self._render(ctx, state)
        if error:
            return await self._render(ctx, state, error)
        return await self._advance(ctx, state)

    async def _on_input(self, ctx: Context) -> View:
        state = await self._state(ctx)
        if state is None:
            return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
        step = self.steps[state["step"]]
        if step.secret:
            deleter = getattr(ctx.responder, "delete_trigger", None)
            if deleter is not None:
                await deleter()
        if step.on_text is None:
            return await self._render(ctx, state)
        error = await step.on_text(ctx, state["data"], ctx.args.get("text", ""))
        return await self._after(ctx, state, error)

    def choice(self, ctx: Context, label: str, step: str, value: str) -> Button:
        """A button answering ``step`` with ``value``."""
        assert self.command is not None
        return Button(label, action=f"{self.command.id}.choose", params={"step": step, "v": value})


async def input_invocation_for(ctx: Context) -> str | None:
    """The spec id that typed text should go to (an active dialog's input), if any."""
    state = await active(ctx)
    if not state:
        return None
    dialog = DIALOGS.get(state.get("dialog", ""))
    if dialog is None or dialog.command is None:
        return None
    return f"{dialog.command.id}.input"
