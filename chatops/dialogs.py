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

Typed answers come through a channel that cannot collide with anything else: a step that
takes text puts an :class:`~chatops.views.Ask` on its View. Slack collects the answer in
a modal (never from the ``/piyasa`` command line, where its first word would run as a
command); Telegram, in a group, sends a ForceReply prompt and takes only its owner's reply
to that prompt (ordinary group talk stays ordinary); in a private chat any plain text
answers. An answer names the step it answers (``params["step"]``), so a typed
``<command>.input`` or a reply to an older prompt is not taken.

A dialog waits :data:`DIALOG_TTL_S` (10 minutes) for its next answer, read from the clock
in ``services.extras[CLOCK_KEY]`` (wall time by default; tests move it by hand). After
that every answer and press gets "expired" and nothing is created; a dialog with a
``store`` keeps its answers there, so starting its command again resumes it.

Usage::

    wiz = Dialog("adduser", steps=[Step("username", render=..., on_text=...), ...],
                 finish=...)
    @command("adduser", role="admin")
    async def adduser(ctx): return await wiz.start(ctx)
    wiz.bind(adduser)
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatops.commands.registry import Arg, Command
from chatops.context import Context, Invocation
from chatops.views import Alert, Ask, Button, View

DIALOG_TTL_S = 10 * 60  # seconds a dialog waits for its next answer before it expires
STATE_TTL_S = 24 * 3600  # an expired state is kept this long, so a late answer hears why
CLOCK_KEY = "dialogs.clock"  # services.extras: () -> unix seconds (tests move it by hand)
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


def now(ctx: Context) -> float:
    """Unix seconds from the injectable dialog clock (``services.extras[CLOCK_KEY]``)."""
    clock: Callable[[], float] = ctx.services.extras.get(CLOCK_KEY, time.time)
    return clock()


def expired(ctx: Context, state: dict[str, Any]) -> bool:
    """Whether ``state`` has waited longer than :data:`DIALOG_TTL_S` for an answer."""
    return float(state.get("expires_at", math.inf)) <= now(ctx)


async def active(ctx: Context) -> dict[str, Any] | None:
    """This user's running dialog in this chat, or None (none, or expired)."""
    state = await ctx.services.cache.get(_key(ctx))
    return None if state is None or expired(ctx, state) else state


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
            ("ask", self._on_ask),
        ):
            cmd.action(name, role=role, private_only=private_only)(handler)
        spec = cmd.actions["input"]
        spec.args = (Arg("text", rest=True, secret=True),)
        return cmd

    # -- state --------------------------------------------------------------------
    async def _save(self, ctx: Context, state: dict[str, Any]) -> None:
        """Store ``state``; the dialog now waits another :data:`DIALOG_TTL_S`."""
        state["expires_at"] = now(ctx) + DIALOG_TTL_S
        await ctx.services.cache.set(_key(ctx), state, ttl=STATE_TTL_S)
        if self.store is not None:
            await self.store.save(ctx, _key(ctx), state)

    async def _lookup(
        self, ctx: Context, *, resume: bool = False
    ) -> tuple[dict[str, Any] | None, bool]:
        """(state, expired): this dialog's live state, or None and whether it expired.
        ``resume`` takes an expired state too (a stored wizard started again)."""
        state = await ctx.services.cache.get(_key(ctx))
        from_store = False
        if state is None and self.store is not None:
            state, from_store = await self.store.load(ctx, _key(ctx)), True
        if not state or state.get("dialog") != self.name:
            return None, False
        if expired(ctx, state) and not resume:
            # the store (if any) keeps the answers: starting the command again resumes
            await ctx.services.cache.delete(_key(ctx))
            return None, True
        if from_store:
            await ctx.services.cache.set(_key(ctx), state, ttl=STATE_TTL_S)
        return state, False

    def ended(self, ctx: Context, was_expired: bool) -> View:
        """What an answer or press to a dialog that is no longer running hears."""
        if not was_expired:
            return View(blocks=[Alert("error", ctx.t("dialog.gone"))])
        assert self.command is not None
        prefix = "/piyasa " if ctx.surface == "slack" else "/"
        cmd = f"{prefix}{self.command.id}"
        text = ctx.t("dialog.expired", minutes=DIALOG_TTL_S // 60, cmd=cmd)
        return View(blocks=[Alert("warning", text)])

    async def gone(self, ctx: Context) -> View:
        """:meth:`ended` for whatever state this user's dialog is in (expired or not)."""
        _state, was_expired = await self._lookup(ctx)
        return self.ended(ctx, was_expired)

    async def state_data(self, ctx: Context) -> dict[str, Any] | None:
        """The answers so far of this user's running dialog (None when none runs; a
        dialog with a store counts while its answers are kept there)."""
        state, _ = await self._lookup(ctx, resume=self.store is not None)
        return state["data"] if state else None

    async def reset(self, ctx: Context, data: dict[str, Any] | None = None) -> View:
        """Forget the answers and start again at the first step."""
        await cancel_active(ctx)
        if self.store is not None:
            await self.store.delete(ctx, _key(ctx))
        return await self.start(ctx, data)

    async def start(self, ctx: Context, data: dict[str, Any] | None = None) -> View:
        """Start over, or resume where the user left off if a live state exists (or, for
        a dialog with a store, any stored state)."""
        state, _ = await self._lookup(ctx, resume=self.store is not None)
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
        if step.on_text is not None:
            view.ask = Ask(
                command=self.command.id,
                step=step.id,
                label=ctx.t("dialog.your_answer"),
                secret=step.secret,
                error=ctx.t(error) if error else "",
                sent=self._prompt_recorder(ctx, state["step"]),
            )
        return view

    def _prompt_recorder(self, ctx: Context, index: int) -> Callable[[str], Awaitable[None]]:
        """Remember which message prompts for step ``index``: in a group only a reply to
        it answers the step."""

        async def sent(message_id: str) -> None:
            state = await active(ctx)
            if state and state.get("dialog") == self.name and state["step"] == index:
                state["prompt"] = {"step": index, "message": str(message_id)}
                await self._save(ctx, state)

        return sent

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
        state, was_expired = await self._lookup(ctx)
        if state is None:
            return self.ended(ctx, was_expired)
        if state["path"]:
            state["step"] = state["path"].pop()
            await self._save(ctx, state)
        return await self._render(ctx, state)

    async def _on_cancel(self, ctx: Context) -> View:
        await cancel_active(ctx)
        return View(blocks=[Alert("info", ctx.t("cancelled"))], edit=True)

    async def _on_choose(self, ctx: Context) -> View:
        state, was_expired = await self._lookup(ctx)
        if state is None:
            return self.ended(ctx, was_expired)
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
            await self._save(ctx, state)  # still waiting: another DIALOG_TTL_S
            return await self._render(ctx, state, error)
        return await self._advance(ctx, state)

    async def _on_ask(self, ctx: Context) -> View:
        """Show the current step again (on Slack the press also reopens its modal)."""
        state, was_expired = await self._lookup(ctx)
        if state is None:
            return self.ended(ctx, was_expired)
        return await self._render(ctx, state)

    async def _on_input(self, ctx: Context) -> View:
        state, was_expired = await self._lookup(ctx)
        step = self.steps[state["step"]] if state is not None else None
        if step is not None and step.secret:
            deleter = getattr(ctx.responder, "delete_trigger", None)
            if deleter is not None:
                await deleter()
        if state is None or step is None:
            return self.ended(ctx, was_expired)
        if ctx.params.get("step") != step.id:
            # typed as ``<command>.input``, or answering an earlier step's prompt
            return await self._render(ctx, state, "dialog.not_this_step")
        if step.on_text is None:
            return await self._render(ctx, state)
        error = await step.on_text(ctx, state["data"], ctx.args.get("text", ""))
        return await self._after(ctx, state, error)

    def choice(self, ctx: Context, label: str, step: str, value: str) -> Button:
        """A button answering ``step`` with ``value``."""
        assert self.command is not None
        return Button(label, action=f"{self.command.id}.choose", params={"step": step, "v": value})


async def waiting(ctx: Context) -> bool:
    """Whether this user has a dialog running in this chat (expired or not)."""
    return await ctx.services.cache.get(_key(ctx)) is not None


async def input_invocation_for(
    ctx: Context, text: str, *, reply_to: str | None = None
) -> Invocation | None:
    """The dialog answer that ``text``, typed in this chat, is — or None when it is none.

    In a private chat any text answers this user's running dialog. In a group only the
    owner's reply to the dialog's current prompt (``reply_to`` = the id of the message
    replied to) does; anything else there is ordinary talk. An expired dialog's answer
    still goes to it, so the user hears that it expired.
    """
    state = await ctx.services.cache.get(_key(ctx))
    if not state:
        return None
    dialog = DIALOGS.get(state.get("dialog", ""))
    if dialog is None or dialog.command is None:
        return None
    if not ctx.chat_private:
        prompt = state.get("prompt") or {}
        if reply_to is None or prompt.get("message") != str(reply_to):
            return None
        if prompt.get("step") != state.get("step"):
            return None
    step = dialog.steps[min(int(state.get("step", 0)), len(dialog.steps) - 1)]
    return Invocation(
        spec_id=f"{dialog.command.id}.input", args_text=text, params={"step": step.id}
    )
