"""Dialog answers on Slack: a modal per step that takes typed text, never the command line.

``/piyasa <text>`` is always a command, so an answer typed there could run one (a password
starting with "users ", a user named "audit"). Instead a step waiting for text opens a
modal (``views.open`` with the ``trigger_id`` of the slash command or button press that
led to it; Slack accepts a trigger once, within 3 seconds) and its message carries an
"Answer" button that reopens it. The modal's ``private_metadata`` is only a server-side
token (chatops.buttons) naming the dialog's input action, the step and where to answer;
the submission (``view_submission``) runs that action through the pipeline like any press,
with the typed text as its one secret argument: masked in the audit log, never logged,
never put back into a view. A problem with the answer is shown under the input
(``response_action: errors``), the next text step replaces the modal
(``response_action: update``), anything else closes it and updates the conversation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from chatops import dialogs, i18n, pipeline
from chatops.context import Invocation
from chatops.slack import render
from chatops.views import View

if TYPE_CHECKING:
    from chatops.slack.surface import SlackResponder, SlackSurface

log = logging.getLogger(__name__)
MODAL_CHAT = "modal"  # the chat a modal's token is bound to (a submission names no channel)
ERROR_MAX = 500  # characters of an inline error under the input
REFUSED = ("denied", "refused", "stepup", "error")


async def token_for(responder: SlackResponder, view: View) -> str:
    """A token for ``view.ask``'s answer, bound to this user, valid as long as a dialog
    waits (:data:`chatops.dialogs.DIALOG_TTL_S`); reusable while the modal shows errors."""
    assert view.ask is not None
    return await responder.surface.tokens.issue(
        spec_id=view.ask.input_action,
        surface="slack",
        user=responder.user_id,
        chat=MODAL_CHAT,
        params={
            "step": view.ask.step,
            "ch": responder.channel_id,
            "ru": responder.response_url,
        },
        ttl=dialogs.DIALOG_TTL_S,
    )


async def open_for(responder: SlackResponder, view: View) -> bool:
    """Open the modal for ``view.ask`` with the responder's trigger (used once). False
    when there is no trigger or Slack refused it (``expired_trigger_id``,
    ``exchanged_trigger_id``...): the message's Answer button then opens it."""
    trigger, responder.trigger_id = responder.trigger_id, None
    if view.ask is None or not trigger:
        return False
    modal = render.modal(view, await token_for(responder, view), responder.lang)
    try:
        await responder.surface.client.views_open(trigger_id=trigger, view=modal)
    except SlackApiError as exc:
        log.info("slack modal not opened: %s", exc.response.get("error"))
        return False
    return True


def _typed(body: dict[str, Any]) -> str:
    values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    return str(
        ((values.get(render.MODAL_BLOCK) or {}).get(render.MODAL_INPUT) or {}).get("value") or ""
    )


async def on_submission(surface: SlackSurface, ack: Any, body: dict[str, Any]) -> None:
    """Handle a ``view_submission`` of a dialog modal (see the module docstring)."""
    user = body.get("user") or {}
    user_id = str(user.get("id") or "")
    name = str(user.get("username") or user.get("name") or "")
    token = str((body.get("view") or {}).get("private_metadata") or "")
    press = await surface.tokens.resolve(token, surface="slack", user=user_id, chat=MODAL_CHAT)
    if press is None or not press.params.get("ch"):
        ctx = await surface._context(user_id, name, "", "")
        text = i18n.t(ctx.lang, "dialog.gone")
        await ack(response_action="errors", errors={render.MODAL_BLOCK: text})
        return
    ctx = await surface._context(user_id, name, press.params["ch"], press.params.get("ru", ""))
    responder: SlackResponder = ctx.responder  # type: ignore[assignment]
    step = press.params.get("step")
    invocation = Invocation(spec_id=press.spec_id, args_text=_typed(body), params={"step": step})
    task = surface._track(pipeline.run(ctx, invocation))
    done, _ = await asyncio.wait({task}, timeout=surface.ack_budget_s)
    if not done:  # Slack waits 3 s for the ack: close the modal, the answer follows
        await ack()
        view, _result = await task
        if view is not None:
            await responder.show(view, edit=True)
        return
    view, result = task.result()
    if view is None:
        await ack()
        return
    if result.startswith(REFUSED):
        error = view.plain_text()[:ERROR_MAX]
        await ack(response_action="errors", errors={render.MODAL_BLOCK: error})
        return
    ask = view.ask
    if ask is not None and ask.step == step and ask.error:
        await ack(response_action="errors", errors={render.MODAL_BLOCK: ask.error[:ERROR_MAX]})
        return
    if ask is not None:  # the next step takes text too: it replaces this modal
        modal = render.modal(view, await token_for(responder, view), responder.lang)
        await ack(response_action="update", view=modal)
    else:
        await ack()
    await responder.show(view, edit=True)
