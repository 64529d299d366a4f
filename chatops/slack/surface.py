"""The Slack app: slash command ``/piyasa <command> [args]`` and ``block_actions``, in HTTP
mode on our aiohttp server at /slack/events. Signatures, timestamps and replays are checked
before bolt parses a byte (:mod:`chatops.slack.verify`, 401 otherwise); Web API errors are
answered in the user's language (:mod:`chatops.slack.errors`).

A slash command is acknowledged within Slack's 3 seconds: if the pipeline answers within
ACK_BUDGET_S the answer *is* the ack; otherwise the ack says "working on it" and the
answer follows through ``response_url``. Replies are ephemeral (only the asker sees them).
Dialog answers are typed into modals (:mod:`chatops.slack.modals`), never after ``/piyasa``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from chatops import announce, context_help, dialogs, i18n, pipeline
from chatops.buttons import ButtonTokens
from chatops.commands import load_all
from chatops.commands.registry import Registry
from chatops.context import Client, Context, Invocation, MessageRef
from chatops.slack import errors, modals, render, verify
from chatops.slack.client import make_client
from chatops.views import Alert, TokenIssuer, View
from chatops.web.paths import SLACK_EVENTS_PATH as EVENTS_PATH
from piyasa.services import Services

log = logging.getLogger(__name__)
SLASH_COMMAND = "/piyasa"
ACK_BUDGET_S = 1.5  # Slack waits 3 s for the ack; a loaded event loop needs the margin


def is_dm(channel_id: str, channel_name: str = "") -> bool:
    """A direct message with the app: conversation ids of DMs start with ``D``, and a slash
    command typed in one says ``channel_name=directmessage`` (Slack's slash command
    payload). A public or private channel is no private chat, even though our answers
    there are ephemeral: private-only commands are refused there."""
    return channel_id.startswith("D") or channel_name == "directmessage"


class SlackResponder:
    """Ephemeral answers through response_url; ``send``/``edit`` post and update real
    channel messages (for live views), ``send_private`` writes to the user's DM."""

    def __init__(
        self,
        surface: SlackSurface,
        *,
        user_id: str,
        channel_id: str,
        response_url: str,
        lang: Any,
    ) -> None:
        self.surface = surface
        self.user_id = user_id
        self.channel_id = channel_id
        self.response_url = response_url
        self._lang = lang
        self.acked: Any = None  # set while the ack can still carry the answer
        self.trigger_id: str | None = None  # opens a dialog step's modal (once, within 3 s)

    @property
    def lang(self) -> str:
        return str(self._lang())

    def _issuer(self, chat: str) -> TokenIssuer:
        return self.surface.tokens.issuer(surface="slack", user=self.user_id, chat=chat)

    async def messages(self, view: View, chat: str | None = None) -> list[dict[str, Any]]:
        return await render.render(view, self._lang(), self._issuer(chat or self.channel_id))

    async def tell(self, exc: SlackApiError, what: str) -> None:
        """Answer a failed Web API call (``what``: the method, for the log) through
        ``response_url``, in the user's language; never the generic "try again"."""
        text = errors.explain(self._lang(), exc, bot_name=self.surface.bot_name)
        log.warning("slack %s failed: %s", what, errors.error_code(exc))
        if not self.response_url:
            return
        hook = AsyncWebhookClient(self.response_url, session=self.surface.http)
        try:
            await hook.send(text=text, response_type="ephemeral", replace_original=False)
        except Exception as exc:  # response_url used up or expired: the log line stays
            log.info("slack answer about %s not delivered: %s", what, type(exc).__name__)

    async def show(self, view: View, *, edit: bool = False) -> MessageRef | None:
        if view.ask is not None:  # first: the trigger is good for 3 s only
            await modals.open_for(self, view)
        messages = await self.messages(view)
        hook = AsyncWebhookClient(self.response_url, session=self.surface.http)
        for i, message in enumerate(messages):
            await hook.send(
                text=message["text"],
                blocks=message["blocks"],
                response_type="ephemeral",
                replace_original=edit and i == 0,
            )
        await self._upload(view, self.channel_id)
        return MessageRef("slack", self.channel_id, self.response_url)

    async def _upload(self, view: View, channel: str) -> None:
        if view.private and (view.images or view.files):
            # files are never ephemeral: private ones go to the user's DM, not the channel
            try:
                opened = await self.surface.client.conversations_open(users=self.user_id)
                channel = opened["channel"]["id"]
            except SlackApiError as exc:
                await self.tell(exc, "conversations.open for a private file")
                return
        for item in [*view.images, *view.files]:
            try:
                await self.surface.client.files_upload_v2(
                    channel=channel,
                    file=item.data,
                    filename=item.filename,
                    initial_comment=item.caption or None,
                )
            except SlackApiError as exc:
                await self.tell(exc, "files_upload_v2")

    async def send(self, view: View, channel: str | None = None) -> MessageRef | None:
        """Post ``view`` as channel messages; a Web API error stops the command with an
        answer that says what to do (:func:`chatops.slack.errors.halt`)."""
        try:
            return await self._post(view, channel)
        except SlackApiError as exc:
            raise errors.halt(
                exc, self._lang(), bot_name=self.surface.bot_name, what="chat.postMessage"
            ) from exc

    async def _post(self, view: View, channel: str | None = None) -> MessageRef | None:
        target = channel or self.channel_id
        ts = ""
        for message in await self.messages(view, target):
            resp = await self.surface.client.chat_postMessage(channel=target, **message)
            ts, target = resp["ts"], resp["channel"]
        await self._upload(view, target)
        return MessageRef("slack", target, ts) if ts else None

    async def edit(self, ref: MessageRef, view: View) -> MessageRef | None:
        if not re.fullmatch(r"\d+\.\d+", ref.message):  # an ephemeral answer: response_url
            return await self.show(view, edit=True)
        messages = await self.messages(view, ref.chat)
        try:
            await self.surface.client.chat_update(channel=ref.chat, ts=ref.message, **messages[0])
        except SlackApiError as exc:
            raise errors.halt(
                exc, self._lang(), bot_name=self.surface.bot_name, what="chat.update"
            ) from exc
        return ref

    async def send_private(self, view: View) -> MessageRef | None:
        try:
            return await self._post(view, self.user_id)
        except SlackApiError as exc:
            log.info("slack DM refused: %s", exc.response.get("error"))
            return None

    async def reach_private(self) -> bool:
        """Whether ``conversations.open`` gives us a DM with the user; per Slack's method
        docs it fails with ``user_disabled``, ``user_not_found`` or ``user_not_visible``
        (and ``missing_scope`` when the app lacks im:write)."""
        try:
            await self.surface.client.conversations_open(users=self.user_id)
        except SlackApiError as exc:
            log.info("slack DM cannot be opened: %s", exc.response.get("error"))
            return False
        return True

    async def resume(self, pending: dict[str, Any]) -> None:
        await self.surface.resume(self.user_id, pending)


class SlackSurface:
    def __init__(
        self,
        services: Services,
        registry: Registry | None = None,
        *,
        token: str | None = None,
        signing_secret: str | None = None,
        api_url: str | None = None,
    ) -> None:
        settings = services.settings
        self.services = services
        self.registry = registry or load_all()
        self.tokens = ButtonTokens(services.cache)
        self.client = make_client(
            token or settings.slack_bot_token.reveal(), api_url or settings.slack_api_url
        )
        secret = signing_secret or settings.slack_signing_secret.reveal()
        self.guard = verify.RequestGuard(secret, services.cache, on_replay=self._audit_replay)
        self.bot_name = ""  # the bot user's name, from auth.test (for "/invite @name")
        self.app = AsyncApp(
            client=self.client,
            signing_secret=secret,
            process_before_response=False,
        )
        # set while Slack refuses the bot token (chatops.startup): requests are answered
        # with what to do about it instead of bolt's "please install this app"
        self.refused: SlackApiError | None = None
        self.app.command(SLASH_COMMAND)(self._on_command)
        self.app.action(re.compile(r"^piyasa:"))(self._on_action)
        self.app.view(render.MODAL_CALLBACK)(self._on_view)
        self.ack_budget_s = ACK_BUDGET_S
        self.http: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- aiohttp mounting -------------------------------------------------------------
    def mount(self, app: web.Application, path: str = EVENTS_PATH) -> None:
        app.router.add_post(path, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        bolt_request = await verify.verified_bolt_request(self.guard, request)
        if self.refused is not None:
            text = errors.explain(self.services.settings.lang, self.refused)
            return web.json_response({"response_type": "ephemeral", "text": text})
        bolt_response = await self.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def _audit_replay(self, timestamp: str) -> None:
        from piyasa.admin import audit

        await audit.record(
            self.services,
            actor="slack:unverified",
            surface="slack",
            action="slack.request",
            result="refused_replay",
            detail=f"replayed signature, request timestamp {timestamp}",
        )

    async def check_token(self) -> dict[str, Any]:
        """``auth.test``: who the bot token belongs to. Raises ``SlackApiError`` when Slack
        refuses the token (``invalid_auth``, ``token_revoked``, ``account_inactive``...)
        and aiohttp's errors when Slack cannot be reached."""
        answer = await self.client.auth_test()
        self.bot_name = str(answer.get("user") or "")
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    async def start(self) -> None:
        import aiohttp

        if self.http is None:
            self.http = aiohttp.ClientSession()
        announce.register(self.services, "slack", announce.slack_poster(self))

    async def stop(self) -> None:
        announce.unregister(self.services, "slack")
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
            self.http = None

    # -- requests ---------------------------------------------------------------------
    async def _context(
        self,
        user_id: str,
        user_name: str,
        channel_id: str,
        response_url: str,
        channel_name: str = "",
    ) -> Context:
        client = Client("slack", user_id, display_name=user_name)
        actor = await pipeline.identify(self.services, client)
        ctx = Context(
            services=self.services,
            registry=self.registry,
            surface="slack",
            client=client,
            actor=actor,
            lang=pipeline.language(self.services, actor, client),
            chat_id=channel_id,
            chat_private=is_dm(channel_id, channel_name),
            input_seen_by_chat=False,  # a slash command's text is never shown to the channel
        )
        ctx.responder = SlackResponder(
            self,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            lang=lambda: ctx.lang,
        )
        return ctx

    def _track(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_command(self, ack: Any, body: dict[str, Any]) -> None:
        """Answer a slash command within Slack's 3 s ack window (REFERENCE.md, Slack): the
        whole request — reading who asks (database), a waiting dialog, the command itself —
        runs in one task, and after ``ACK_BUDGET_S`` the ack says "working on it" and the
        answer follows through the response_url. (The budget used to start after the
        database lookups; on a loaded machine those alone ran past the window and Bolt
        answered "unhandled request".)"""
        acked: dict[str, Any] = {}
        task = self._track(self._run_command(body, acked))
        done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET_S)
        if done:
            reply = task.result()
            if reply is None:
                await ack()
                return
            kwargs, after = reply
            await ack(**kwargs)
            if after is not None:
                await after()
            return
        acked["working"] = True
        await ack(
            text=i18n.t(self.services.settings.lang, "slack.working"), response_type="ephemeral"
        )
        reply = await task
        if reply is not None:  # it had passed the point where it reads acked["working"]
            kwargs, after = reply
            hook = AsyncWebhookClient(body["response_url"], session=self.http)
            await hook.send(replace_original=True, **kwargs)
            if after is not None:
                await after()

    async def _run_command(self, body: dict[str, Any], acked: dict[str, Any]) -> Any:
        """The command's work; returns ``(ack kwargs, then)`` while the ack is still owed,
        or None for an empty ack. Once ``acked["working"]`` is set it shows the answer
        itself (an edit of "working on it") and returns None."""
        name, _, args = (body.get("text") or "").strip().partition(" ")
        ctx = await self._context(
            body["user_id"],
            body.get("user_name", ""),
            body["channel_id"],
            body["response_url"],
            body.get("channel_name", ""),
        )
        invocation = Invocation(spec_id=(name.lower() or "help")[:32], args_text=args.strip())
        if name and name.lower() not in self.registry.commands and await dialogs.waiting(ctx):
            # probably a dialog answer typed the old way: answers go into the modal only,
            # and the typed words are neither run nor written anywhere
            text = i18n.t(ctx.lang, "dialog.use_form")
            if acked.get("working"):
                await AsyncWebhookClient(body["response_url"], session=self.http).send(
                    text=text, response_type="ephemeral", replace_original=True
                )
                return None
            return {"text": text, "response_type": "ephemeral"}, None
        ctx.responder.trigger_id = body.get("trigger_id")  # type: ignore[union-attr]
        view, _result = await pipeline.run(
            ctx, invocation, resume={"response_url": body["response_url"]}
        )
        responder: SlackResponder = ctx.responder  # type: ignore[assignment]
        if view is None:
            return None
        if acked.get("working"):
            await responder.show(view, edit=True)
            return None
        messages = await responder.messages(view)

        async def then() -> None:
            await modals.open_for(responder, view)
            if len(messages) > 1 or view.files or view.images:
                hook = AsyncWebhookClient(responder.response_url, session=self.http)
                for message in messages[1:]:
                    await hook.send(response_type="ephemeral", **message)
                await responder._upload(view, responder.channel_id)

        first = messages[0]
        return {
            "text": first["text"],
            "blocks": first["blocks"],
            "response_type": "ephemeral",
        }, then

    async def _on_action(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        user_id = body["user"]["id"]
        channel_id = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id", ""
        )
        ctx = await self._context(
            user_id,
            body["user"].get("username", ""),
            channel_id,
            body.get("response_url", ""),
            (body.get("channel") or {}).get("name", ""),
        )
        press = await self.tokens.resolve(
            str(action.get("value") or ""), surface="slack", user=user_id, chat=channel_id
        )
        responder: SlackResponder = ctx.responder  # type: ignore[assignment]
        responder.trigger_id = body.get("trigger_id")
        if press is None:
            ctx.invocation = Invocation(spec_id="button", is_press=True)
            await pipeline.audit(ctx, "refused_button")
            view = View(blocks=[Alert("error", ctx.t("refuse.button"))])
            await responder.show(context_help.add_learn_more(ctx, view, "refuse.button"))
            return
        invocation = Invocation(
            spec_id=press.spec_id,
            args_text=press.args_text,
            params=press.params,
            confirmed=press.confirmed,
            is_press=True,
        )
        view, result = await pipeline.run(
            ctx, invocation, resume={"response_url": body.get("response_url", "")}
        )
        if view is None:
            return
        refused = result.startswith(("denied", "refused", "stepup", "error"))
        # A refused press leaves the pressed message alone and answers beside it.
        edit = False if refused else (view.edit if view.edit is not None else True)
        await responder.show(view, edit=edit)

    async def _on_view(self, ack: Any, body: dict[str, Any]) -> None:
        await modals.on_submission(self, ack, body)

    async def resume(self, user_id: str, pending: dict[str, Any]) -> None:
        """Run a request parked for step-up again, from the top (re-authorized)."""
        if not pending.get("invocation"):
            return
        url = (pending.get("resume") or {}).get("response_url", "")
        ctx = await self._context(user_id, "", pending["chat_id"], url)
        view, _ = await pipeline.run(ctx, Invocation.from_dict(pending["invocation"]))
        if view is not None and url:
            await ctx.responder.show(view)  # type: ignore[union-attr]
