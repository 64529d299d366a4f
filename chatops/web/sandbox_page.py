"""`/sandbox`: try Piyasa without Telegram (sandbox mode only; 404 otherwise).

A chat page over the local Telegram sandbox: the admin group, the fleet's groups and a
private chat with the admin bot. The visitor types as the seeded sandbox admin and
presses inline buttons. The language switch (EN/TR) posts to ``/sandbox/lang``: it
sets the page's language and the demo user's, so the bot answers in the language the
visitor chose (as ``/lang`` would). Messages are rendered on the server (the page works without
JavaScript: forms post, the server redirects back); a small script long-polls the
sandbox's own event API (``/sandbox/api/events``, mounted on this server too) and
re-fetches the message list when the open chat changes, so the fleet is seen chatting
live and bot replies appear without a reload.
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from chatops import i18n, menus
from chatops.web.status_i18n import negotiate

log = logging.getLogger(__name__)
MAX_MESSAGES = 80
_TEMPLATE: Template | None = None
_TAGS = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "spoiler": ('<span class="spoiler">', "</span>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
}


def setup_sandbox_page(app: web.Application, services: Any) -> None:
    """Add `/sandbox` when ``services.extras["sandbox"]`` holds a running TelegramSandbox,
    behind the sandbox's guard (per-run key, same-site, loopback Host) when it has one."""
    sandbox = services.extras.get("sandbox")
    if sandbox is None:
        return
    from piyasa.sandbox.telegram import api

    if sandbox.guard is not None:
        app.middlewares.append(sandbox.guard.middleware)

    page = SandboxPage(sandbox, services)
    app.router.add_get("/sandbox", page.page)
    app.router.add_get("/sandbox/messages", page.fragment)
    app.router.add_post("/sandbox/send", page.send)
    app.router.add_post("/sandbox/press", page.press)
    app.router.add_post("/sandbox/lang", page.switch_lang)
    app.router.add_get("/sandbox/static/sandbox.js", page.script)
    api.add_routes(app, sandbox)  # the JSON API (events long poll) on this origin too


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def entities_html(text: str, entities: list[dict[str, Any]] | None) -> str:
    """Telegram text + entities (UTF-16 offsets) -> safe HTML."""
    opens: dict[int, list[str]] = defaultdict(list)
    closes: dict[int, list[str]] = defaultdict(list)
    for ent in sorted(entities or [], key=lambda e: (e["offset"], -e["length"])):
        if ent["type"] == "text_link" and ent.get("url", "").startswith(("http://", "https://")):
            tag = (f'<a href="{_e(ent["url"])}" rel="noopener">', "</a>")
        else:
            tag = _TAGS.get(ent["type"], ("", ""))
        if not tag[0]:
            continue
        opens[ent["offset"]].append(tag[0])
        closes[ent["offset"] + ent["length"]].insert(0, tag[1])
    out: list[str] = []
    pos = 0
    for ch in text:
        out.extend(closes.pop(pos, []))
        out.extend(opens.pop(pos, []))
        out.append(_e(ch))
        pos += len(ch.encode("utf-16-le")) // 2
    out.extend(closes.pop(pos, []))
    for rest in closes.values():  # entities past the end: close what was opened
        out.extend(rest)
    return "".join(out)


class SandboxPage:
    def __init__(self, sandbox: Any, services: Any) -> None:
        from piyasa.sandbox import demo

        self.sb = sandbox
        self.services = services
        self.user_id = demo.ADMIN_USER_ID
        self.admin_bot_id = int(demo.ADMIN_BOT_TOKEN.split(":")[0])
        self.admin_group = demo.ADMIN_GROUP_ID

    # -- what there is -------------------------------------------------------------------

    def chats(self, lang: str) -> list[tuple[int, str]]:
        w = self.sb.world
        out: list[tuple[int, str]] = []
        if self.admin_group in w.groups:
            out.append((self.admin_group, w.groups[self.admin_group].title))
        out.append((self.user_id, i18n.t(lang, "sandbox.private", bot="@piyasa_admin_bot")))
        for gid, group in w.groups.items():
            if gid != self.admin_group:
                out.append((gid, group.title))
        return out

    def _bot_for(self, chat_id: int) -> int | None:
        return self.admin_bot_id if chat_id > 0 else None

    def _messages(self, chat_id: int) -> list[dict[str, Any]]:
        try:
            return self.sb.messages(chat_id, self._bot_for(chat_id))[-MAX_MESSAGES:]
        except LookupError:
            return []

    def _lang(self, request: web.Request) -> str:
        return negotiate(
            request.query.get("lang"),
            request.headers.get("Accept-Language"),
            self.services.settings.lang,
        )

    def _chat(self, raw: str | None, lang: str) -> int:
        known = [cid for cid, _ in self.chats(lang)]
        try:
            chat = int(raw) if raw else known[0]
        except ValueError:
            chat = known[0]
        return chat if chat in known else known[0]

    # -- rendering -----------------------------------------------------------------------

    def render_message(self, msg: dict[str, Any], chat: int, lang: str) -> str:
        sender = msg.get("from") or {}
        mine = sender.get("id") == self.user_id
        name = sender.get("first_name") or sender.get("username") or "?"
        if sender.get("is_bot"):
            name += " 🤖"
        body = entities_html(msg.get("text") or msg.get("caption") or "", msg.get("entities"))
        parts = [f'<div class="who">{_e(name)}</div>']
        replied = msg.get("reply_to_message")
        if replied:
            quoted = (replied.get("text") or replied.get("caption") or "")[:120]
            parts.append(f'<div class="quote">{_e(quoted)}</div>')
        doc = msg.get("document")
        if doc:
            parts.append(f'<div class="file">📎 {_e(doc.get("file_name") or "document")}</div>')
        if msg.get("photo"):
            parts.append('<div class="file">🖼</div>')
        if body:
            parts.append(f'<div class="text">{body}</div>')
        keyboard = (msg.get("reply_markup") or {}).get("inline_keyboard") or []
        if keyboard:
            rows = []
            for row in keyboard:
                cells = []
                for button in row:
                    if button.get("url"):
                        cells.append(
                            f'<a class="kb" href="{_e(button["url"])}" rel="noopener">'
                            f"{_e(button['text'])}</a>"
                        )
                    elif button.get("callback_data"):
                        cells.append(
                            '<form method="post" action="/sandbox/press">'
                            f'<input type="hidden" name="chat" value="{chat}">'
                            f'<input type="hidden" name="message_id" value="{msg["message_id"]}">'
                            f'<input type="hidden" name="data" value="{_e(button["callback_data"])}">'
                            f'<input type="hidden" name="lang" value="{lang}">'
                            f'<button class="kb" type="submit">{_e(button["text"])}</button></form>'
                        )
                rows.append(f'<div class="kbrow">{"".join(cells)}</div>')
            parts.append(f'<div class="keyboard">{"".join(rows)}</div>')
        edited = f' <span class="edited">{_e(i18n.t(lang, "sandbox.edited"))}</span>'
        stamp = (
            f'<div class="meta">#{msg["message_id"]}{edited if msg.get("edit_date") else ""}</div>'
        )
        cls = "msg mine" if mine else ("msg bot" if sender.get("is_bot") else "msg")
        return (
            f'<li class="{cls}" id="m{msg["message_id"]}" data-id="{msg["message_id"]}">'
            + "".join(parts)
            + stamp
            + "</li>"
        )

    def render_messages(self, chat: int, lang: str) -> str:
        msgs = self._messages(chat)
        if not msgs:
            return f'<li class="empty">{_e(i18n.t(lang, "sandbox.empty"))}</li>'
        return "\n".join(self.render_message(m, chat, lang) for m in msgs)

    def _toast(self, qid: str | None) -> str:
        if not qid:
            return ""
        for answer in reversed(self.sb.callback_answers):
            if answer["callback_query_id"] == qid and answer.get("text"):
                return answer["text"]
        return ""

    # -- handlers ------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        chat = self._chat(request.query.get("chat"), lang)
        tabs = "".join(
            f'<a class="tab" href="/sandbox?{urlencode({"chat": cid, "lang": lang})}"'
            f"{' aria-current=page' if cid == chat else ''}>{_e(title)}</a>"
            for cid, title in self.chats(lang)
        )
        langs = (
            '<form method="post" action="/sandbox/lang">'
            f'<input type="hidden" name="chat" value="{chat}">'
            + "".join(
                f'<button name="lang" value="{code}"'
                f"{' aria-current=true' if code == lang else ''}>{code.upper()}</button>"
                for code in i18n.LANGS
            )
            + "</form>"
        )
        title = dict(self.chats(lang))[chat]
        toast = self._toast(request.query.get("q"))
        text = _template().substitute(
            lang=lang,
            page_title=_e(i18n.t(lang, "sandbox.title")),
            intro=_e(i18n.t(lang, "sandbox.intro")),
            langs=langs,
            tabs=tabs,
            chat=chat,
            chat_title=_e(title),
            after=len(self.sb.world.events),
            qid=_e(request.query.get("q", "")),
            toast=_e(toast),
            toast_hidden="" if toast else "hidden",
            messages=self.render_messages(chat, lang),
            placeholder=_e(i18n.t(lang, "sandbox.placeholder")),
            send=_e(i18n.t(lang, "sandbox.send")),
            you=_e(i18n.t(lang, "sandbox.you")),
        )
        return web.Response(
            text=text,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store", "Content-Language": lang},
        )

    async def fragment(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        chat = self._chat(request.query.get("chat"), lang)
        return web.Response(
            text=self.render_messages(chat, lang),
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    def _same_origin(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if not origin or origin == "null":
            return origin is None
        return urlsplit(origin).netloc == request.host

    def _back(self, chat: int, lang: str, **extra: str) -> web.HTTPSeeOther:
        return web.HTTPSeeOther(f"/sandbox?{urlencode({'chat': chat, 'lang': lang, **extra})}")

    async def send(self, request: web.Request) -> web.Response:
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="cross-site form posts are refused")
        form = await request.post()
        lang = str(form.get("lang") or self.services.settings.lang)
        lang = lang if lang in i18n.LANGS else "en"
        chat = self._chat(str(form.get("chat") or ""), lang)
        text = str(form.get("text") or "").strip()[:4096]
        if text:
            if chat > 0:
                await self.sb.send_private(self.user_id, self.admin_bot_id, text)
            else:
                await self.sb.send_user_message(self.user_id, chat, text)
        raise self._back(chat, lang)

    async def press(self, request: web.Request) -> web.Response:
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="cross-site form posts are refused")
        form = await request.post()
        lang = str(form.get("lang") or self.services.settings.lang)
        lang = lang if lang in i18n.LANGS else "en"
        chat = self._chat(str(form.get("chat") or ""), lang)
        try:
            qid = await self.sb.press_button(
                self.user_id,
                chat,
                int(str(form.get("message_id") or 0)),
                str(form.get("data") or ""),
                bot_id=self._bot_for(chat),
            )
        except (LookupError, ValueError) as exc:  # the message or button is gone
            log.info("sandbox page: press refused (%s)", exc)
            raise self._back(chat, lang) from None
        raise self._back(chat, lang, q=qid)

    async def switch_lang(self, request: web.Request) -> web.Response:
        """The EN/TR switch: the page and the bot's answers change language together."""
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="cross-site form posts are refused")
        form = await request.post()
        lang = str(form.get("lang") or "")
        if lang not in i18n.LANGS:
            page_lang = self._lang(request)
            raise web.HTTPBadRequest(
                text=i18n.t(page_lang, "sandbox.bad_lang", langs=", ".join(i18n.LANGS))
            )
        await self.set_bot_language(lang)
        raise self._back(self._chat(str(form.get("chat") or ""), lang), lang)

    async def set_bot_language(self, lang: str) -> None:
        """The demo user's language for the bot's answers: their Telegram app language in
        the sandbox, and their stored choice (what ``/lang`` sets, which wins over the
        app's; piyasa.admin.identity), so the next answer is in ``lang``."""
        from piyasa.admin import identity

        account = self.sb.world.users.get(self.user_id)
        if account is not None:
            account.language_code = lang
        principal = await identity.resolve(self.services, "telegram", str(self.user_id))
        if principal is not None:
            await identity.set_language(self.services, principal.user_id, lang)
            await menus.refresh_user(self.services, principal.user_id)

    async def script(self, _request: web.Request) -> web.Response:
        text = resources.files("chatops.web").joinpath("static/sandbox.js").read_text("utf-8")
        return web.Response(
            text=text, content_type="application/javascript", headers={"Cache-Control": "no-cache"}
        )


def _template() -> Template:
    global _TEMPLATE
    if _TEMPLATE is None:
        text = resources.files("chatops.web").joinpath("templates/sandbox.html").read_text("utf-8")
        _TEMPLATE = Template(text)
    return _TEMPLATE
