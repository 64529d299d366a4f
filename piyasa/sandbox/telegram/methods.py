"""Bot API method handlers.

Each handler validates everything first, then checks rate limits, then commits: a refused
call (4xx) changes nothing, as on Telegram. Handlers receive a :class:`Call` and return the
``result`` value; errors are raised as :class:`ApiError`.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import mimetypes
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from piyasa.tasks import wait_for

from . import errors as E
from . import lifecycle
from .errors import ApiError, bad_request, forbidden
from .formatting import parse_text, strip_text
from .limits import RATE_LIMITED_METHODS, retry_after_seconds
from .params import Params, Upload
from .state import (
    ACTIVE,
    DEFAULT_UPDATE_TYPES,
    BotAccount,
    CallbackQuery,
    Conversation,
    Group,
    StoredFile,
    Webhook,
    World,
    admin_rights,
)

Handler = Callable[["Call"], Awaitable[Any]]
METHODS: dict[str, Handler] = {}
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
MESSAGE_DELETE_WINDOW = 48 * 3600.0
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass
class Call:
    world: World
    bot: BotAccount
    method: str
    params: Params
    webhooks: Any = None  # WebhookDelivery, set by the server

    @property
    def p(self) -> Params:
        return self.params


def method(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for n in names:
            METHODS[n.lower()] = fn
        return fn

    return register


# -- shared checks ----------------------------------------------------------------------------


def _chat_id(call: Call) -> int:
    raw = call.p.raw("chat_id")
    if raw in (None, ""):
        raise bad_request("chat_id is empty")
    if isinstance(raw, str) and raw.startswith("@"):
        for g in call.world.groups.values():
            if g.username and g.username.lower() == raw[1:].lower():
                return g.id
        raise bad_request(E.CHAT_NOT_FOUND)
    return call.p.integer("chat_id") or 0


def target(call: Call, *, sending: bool = True) -> Conversation:
    """The conversation ``chat_id`` names, if this bot may act in it."""
    w, bot = call.world, call.bot
    chat_id = _chat_id(call)
    if w.is_group(chat_id):
        group = w.groups.get(chat_id)
        status = group.status.get(bot.id) if group else None
        if group is not None and (moved := lifecycle.upgraded(group)):
            raise moved
        if group is None or status is None:
            raise bad_request(E.CHAT_NOT_FOUND)
        if status == "kicked":
            raise forbidden(f"bot was kicked from the {group.type} chat")
        if status not in ACTIVE:
            raise forbidden(f"bot is not a member of the {group.type} chat")
        return w.conversation(chat_id)
    if chat_id not in w.users:
        if chat_id in w.bots and sending:
            raise forbidden("bot can't send messages to bots")
        raise bad_request(E.CHAT_NOT_FOUND)
    if (chat_id, bot.id) in w.blocked and sending:
        raise forbidden("bot was blocked by the user")
    if (chat_id, bot.id) not in w.started:
        if sending:
            raise forbidden("bot can't initiate conversation with a user")
        raise bad_request(E.CHAT_NOT_FOUND)
    return w.conversation(chat_id, bot.id)


def admit(call: Call, conv: Conversation) -> None:
    """Raise 429 if this send would exceed a limit; otherwise consume from every limit."""
    w = call.world
    if not w.enforce_limits or call.method not in RATE_LIMITED_METHODS:
        return
    chat_id = conv.chat["id"]
    now = w.now()
    wait = w.limiter.wait(call.bot.id, chat_id, w.is_group(chat_id), now)
    if wait > 0:
        raise E.too_many_requests(retry_after_seconds(wait))
    w.limiter.consume(call.bot.id, chat_id, w.is_group(chat_id), now)


def visible_text(call: Call, field: str, mode_field: str, entities_field: str) -> tuple[str, list]:
    raw = call.p.string(field) or ""
    text, entities = parse_text(raw, call.p.string(mode_field))
    given = call.p.obj(entities_field)
    if given and not call.p.string(mode_field):
        entities = list(given)
    return strip_text(text, _mentions(call, entities))


def _mentions(call: Call, entities: list) -> list:
    """A ``text_mention`` (``tg://user?id=``) carries the whole User in the Message, as
    Telegram sends it; a user Telegram cannot resolve for the bot leaves plain text."""
    out = []
    for ent in entities:
        if ent.get("type") == "text_mention":
            user = call.world.users.get(int((ent.get("user") or {}).get("id") or 0))
            if user is None:
                continue
            ent = {**ent, "user": user.user()}
        out.append(ent)
    return out


def message_text(call: Call) -> tuple[str, list]:
    text, entities = visible_text(call, "text", "parse_mode", "entities")
    if not text:
        raise bad_request("message text is empty")
    if len(text) > call.world.limits.text_max:
        raise bad_request("message is too long")
    return text, entities


def caption(call: Call) -> tuple[str, list]:
    text, entities = visible_text(call, "caption", "parse_mode", "caption_entities")
    if len(text) > call.world.limits.caption_max:
        raise bad_request("message caption is too long")
    return text, entities


def reply_markup(call: Call) -> dict[str, Any] | None:
    markup = call.p.obj("reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if "force_reply" in markup and markup["force_reply"] is not True:
            raise bad_request("can't parse reply keyboard markup JSON object")
        placeholder = markup.get("input_field_placeholder")
        if placeholder is not None and not 1 <= len(str(placeholder)) <= 64:
            raise bad_request("can't parse reply keyboard markup JSON object")
        return markup  # reply keyboards / remove / force_reply: kept beside the message
    rows = markup["inline_keyboard"]
    lim = call.world.limits
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    if sum(len(r) for r in rows) > lim.inline_buttons_max or any(
        len(r) > lim.inline_buttons_per_row_max for r in rows
    ):
        raise bad_request("reply markup is too long")
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if "callback_data" in button:
                size = len(str(button["callback_data"]).encode("utf-8"))
                if not 1 <= size <= lim.callback_data_max_bytes:
                    raise bad_request("BUTTON_DATA_INVALID")
            elif not any(
                k in button
                for k in (
                    "url",
                    "login_url",
                    "web_app",
                    "switch_inline_query",
                    "switch_inline_query_current_chat",
                    "switch_inline_query_chosen_chat",
                    "copy_text",
                    "callback_game",
                    "pay",
                )
            ):
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
    return markup


def reply_to(call: Call, conv: Conversation) -> dict[str, Any] | None:
    params = call.p.obj("reply_parameters") or {}
    message_id = params.get("message_id") or call.p.integer("reply_to_message_id")
    if not message_id:
        return None
    original = conv.messages.get(int(message_id))
    if original is None:
        allow = params.get("allow_sending_without_reply") or call.p.flag(
            "allow_sending_without_reply"
        )
        if allow:
            return None
        raise bad_request("message to be replied not found")
    quoted = copy.deepcopy(original)
    quoted.pop("reply_to_message", None)
    return quoted


def send(
    call: Call, conv: Conversation, body: dict[str, Any], markup: dict[str, Any] | None
) -> dict[str, Any]:
    """Common tail of every send: reply, topic, flags, rate limit, store."""
    replied = reply_to(call, conv)
    thread = thread_of(call, conv, replied)
    admit(call, conv)
    msg: dict[str, Any] = {"from": call.bot.user(), **body}
    if replied is not None:
        msg["reply_to_message"] = replied
    if markup is not None and "inline_keyboard" in markup:
        msg["reply_markup"] = markup
    if call.p.flag("protect_content"):
        msg["has_protected_content"] = True
    msg.update(thread)
    if markup is not None and "inline_keyboard" not in markup:
        conv.client_markup[conv.next_id] = markup  # the id store() is about to give
    return call.world.store(conv, msg, call.bot.id)


def thread_of(call: Call, conv: Conversation, replied: dict[str, Any] | None) -> dict[str, Any]:
    """The topic a send lands in (validated): see :func:`.lifecycle.thread_fields`."""
    return lifecycle.thread_fields(call.world, conv, call.p.integer("message_thread_id"), replied)


def find_message(call: Call, conv: Conversation, missing: str) -> dict[str, Any]:
    message_id = call.p.integer("message_id")
    if call.p.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    if not message_id:
        raise bad_request("message identifier is not specified")
    msg = conv.messages.get(message_id)
    if msg is None:
        raise bad_request(missing)
    return msg


def editable(call: Call, conv: Conversation, msg: dict[str, Any]) -> None:
    if conv.senders.get(msg["message_id"]) != call.bot.id:
        raise bad_request("message can't be edited")


def commit_edit(
    call: Call, conv: Conversation, msg: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    current = {k: msg.get(k) for k in changes}
    if current == changes:
        raise bad_request(E.NOT_MODIFIED)
    admit(call, conv)
    for k, v in changes.items():
        if v in (None, []):
            msg.pop(k, None)
        else:
            msg[k] = v
    msg["edit_date"] = call.world.date()
    call.world.emit("edit", conv, msg, bot_id=call.bot.id)
    return copy.deepcopy(msg)


# -- identity, commands ------------------------------------------------------------------------


@method("getMe")
async def get_me(call: Call) -> dict[str, Any]:
    return {
        **call.bot.user(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method("logOut", "close")
async def log_out(call: Call) -> bool:
    return True


def _scope_key(call: Call) -> tuple[str, str]:
    scope = call.p.obj("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), call.p.string("language_code") or ""


@method("setMyCommands")
async def set_my_commands(call: Call) -> bool:
    commands = call.p.obj("commands")
    if not isinstance(commands, list):
        raise bad_request("commands not specified")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    for c in commands:
        if not isinstance(c, dict) or not COMMAND_RE.match(str(c.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(c.get("description", ""))) <= 256:
            raise bad_request("command description is empty")
    key = _scope_key(call)
    if commands:
        call.bot.commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
    else:
        call.bot.commands.pop(key, None)
    return True


@method("getMyCommands")
async def get_my_commands(call: Call) -> list[dict[str, Any]]:
    return copy.deepcopy(call.bot.commands.get(_scope_key(call), []))


@method("deleteMyCommands")
async def delete_my_commands(call: Call) -> bool:
    call.bot.commands.pop(_scope_key(call), None)
    return True


# -- updates ----------------------------------------------------------------------------------


def _set_allowed(bot: BotAccount, allowed: Any) -> None:
    if allowed is None:
        return
    bot.allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES


@method("getUpdates")
async def get_updates(call: Call) -> list[dict[str, Any]]:
    bot, w, p = call.bot, call.world, call.p
    if bot.webhook is not None:
        raise ApiError(409, E.WEBHOOK_CONFLICT)
    limit = min(max(p.integer("limit", 100) or 100, 1), 100)
    timeout = min(max(p.number("timeout", 0) or 0, 0.0), 50.0)
    _set_allowed(bot, p.obj("allowed_updates"))
    offset = p.integer("offset")
    if offset is not None and offset > 0:
        bot.updates = [(t, u) for t, u in bot.updates if u["update_id"] >= offset]
    elif offset is not None and offset < 0:
        bot.updates = bot.updates[offset:]
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.notifier.notify()  # an older poller wakes up and learns it was superseded
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        waiter = bot.notifier.waiter()
        if generation != bot.poll_generation:
            raise ApiError(409, E.GETUPDATES_CONFLICT)
        if bot.webhook is not None:
            raise ApiError(409, E.WEBHOOK_CONFLICT)
        w.prune_updates(bot)
        if bot.updates or w.closing:
            return [copy.deepcopy(u) for _, u in bot.updates[:limit]]
        remaining = deadline - loop.time()
        if remaining <= 0:
            return []
        bot.parked_polls += 1
        w.notifier.notify()  # wait_for_poller() observers
        try:
            await wait_for(waiter.wait(), remaining)
        except TimeoutError:
            return []
        finally:
            bot.parked_polls -= 1


@method("setWebhook")
async def set_webhook(call: Call) -> bool:
    p, bot = call.p, call.bot
    url = p.string("url") or ""
    if not url:
        await call.webhooks.stop(bot)
        bot.webhook = None
        return True
    if not re.match(r"^https?://[^/\s]+", url):
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
    if url.startswith("http://") and not call.webhooks.allow_http:
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
    secret = p.string("secret_token")
    if secret is not None and not SECRET_TOKEN_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    _set_allowed(bot, p.obj("allowed_updates"))
    if p.flag("drop_pending_updates"):
        bot.updates.clear()
    await call.webhooks.stop(bot)
    bot.webhook = Webhook(
        url=url, secret_token=secret, max_connections=p.integer("max_connections", 40) or 40
    )
    bot.notifier.notify()  # a waiting getUpdates now fails with 409
    call.webhooks.start(bot)
    return True


@method("deleteWebhook")
async def delete_webhook(call: Call) -> bool:
    await call.webhooks.stop(call.bot)
    call.bot.webhook = None
    if call.p.flag("drop_pending_updates"):
        call.bot.updates.clear()
    return True


@method("getWebhookInfo")
async def get_webhook_info(call: Call) -> dict[str, Any]:
    bot, hook = call.bot, call.bot.webhook
    call.world.prune_updates(bot)
    info: dict[str, Any] = {
        "url": hook.url if hook else "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.updates),
    }
    if hook:
        info["max_connections"] = hook.max_connections
        if hook.last_error_date:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        if bot.allowed_updates != DEFAULT_UPDATE_TYPES:
            info["allowed_updates"] = sorted(bot.allowed_updates)
    return info


# -- messages ---------------------------------------------------------------------------------


@method("sendMessage")
async def send_message(call: Call) -> dict[str, Any]:
    conv = target(call)
    text, entities = message_text(call)
    markup = reply_markup(call)
    body: dict[str, Any] = {"text": text}
    if entities:
        body["entities"] = entities
    return send(call, conv, body, markup)


@method("editMessageText")
async def edit_message_text(call: Call) -> dict[str, Any]:
    conv = target(call)
    msg = find_message(call, conv, "message to edit not found")
    editable(call, conv, msg)
    if "text" not in msg:
        raise bad_request("there is no text in the message to edit")
    text, entities = message_text(call)
    markup = reply_markup(call)
    return commit_edit(
        call, conv, msg, {"text": text, "entities": entities or None, "reply_markup": markup}
    )


@method("editMessageCaption")
async def edit_message_caption(call: Call) -> dict[str, Any]:
    conv = target(call)
    msg = find_message(call, conv, "message to edit not found")
    editable(call, conv, msg)
    if "text" in msg:
        raise bad_request("there is no caption in the message to edit")
    text, entities = caption(call)
    return commit_edit(
        call,
        conv,
        msg,
        {
            "caption": text or None,
            "caption_entities": entities or None,
            "reply_markup": reply_markup(call),
        },
    )


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(call: Call) -> dict[str, Any]:
    conv = target(call)
    msg = find_message(call, conv, "message to edit not found")
    editable(call, conv, msg)
    return commit_edit(call, conv, msg, {"reply_markup": reply_markup(call)})


@method("deleteMessage")
async def delete_message(call: Call) -> bool:
    w = call.world
    conv = target(call, sending=False)
    msg = find_message(call, conv, "message to delete not found")
    own = conv.senders.get(msg["message_id"]) == call.bot.id
    if w.is_group(conv.chat["id"]):
        status = w.groups[conv.chat["id"]].status.get(call.bot.id)
        if not own and status not in ("administrator", "creator"):
            raise bad_request("message can't be deleted for everyone")
    if w.now() - msg["date"] > MESSAGE_DELETE_WINDOW and not own:
        raise bad_request("message can't be deleted for everyone")
    del conv.messages[msg["message_id"]]
    conv.deleted[msg["message_id"]] = msg
    w.deleted.append((conv.chat["id"], msg["message_id"]))
    w.emit("delete", conv, msg, bot_id=call.bot.id)
    return True


@method("answerCallbackQuery")
async def answer_callback_query(call: Call) -> bool:
    w, p = call.world, call.p
    qid = p.string("callback_query_id") or ""
    query: CallbackQuery | None = w.queries.get(qid)
    if (
        query is None
        or query.bot_id != call.bot.id
        or query.answered
        or w.now() - query.created > w.limits.callback_answer_timeout
    ):
        raise bad_request(E.QUERY_TOO_OLD)
    text = p.string("text") or ""
    if len(text) > w.limits.callback_answer_text_max:
        raise bad_request("MESSAGE_TOO_LONG")
    query.answered = True
    answer = {
        "callback_query_id": qid,
        "bot_id": call.bot.id,
        "user_id": query.user_id,
        "text": text or None,
        "show_alert": p.flag("show_alert"),
        "url": p.string("url"),
        "cache_time": p.integer("cache_time", 0),
        "time": w.now(),
    }
    w.callback_answers.append(answer)
    w.emit("callback_answer", None, None, bot_id=call.bot.id, chat_id=None, answer=answer)
    return True


@method("sendChatAction")
async def send_chat_action(call: Call) -> bool:
    target(call)
    if call.p.string("action") not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    return True


# -- files ------------------------------------------------------------------------------------


def _upload(call: Call, field: str) -> Upload | StoredFile:
    """The file a send names: a multipart part (direct or attach://) or a known file_id."""
    p = call.p
    if field in p.files:
        return p.files[field]
    ref = p.string(field)
    if not ref:
        raise bad_request(f"there is no {field} in the request")
    if ref.startswith("attach://"):
        part = p.files.get(ref[len("attach://") :])
        if part is None:
            raise bad_request(f"there is no {field} in the request")
        return part
    stored = call.world.files.get(ref)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    return stored


def _store_file(w: World, data: bytes, folder: str, ext: str, **meta: Any) -> StoredFile:
    n = w.next_id()
    f = StoredFile(
        file_id=f"SBX{folder[:3].upper()}{n:08d}{len(data):x}",
        file_unique_id=f"U{n:08d}",
        data=data,
        file_path=f"{folder}/file_{n}{ext}",
        **meta,
    )
    w.files[f.file_id] = f
    w.file_paths[f.file_path] = f
    return f


def _open_image(call: Call, source: Upload | StoredFile) -> Any:
    """Decode an uploaded photo (None for a file_id resend); Telegram rejects non-images."""
    if isinstance(source, StoredFile):
        return None
    if len(source.data) > call.world.limits.photo_max_bytes:
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    try:
        from PIL import Image

        image = Image.open(io.BytesIO(source.data))
        image.load()
    except Exception:
        raise bad_request("IMAGE_PROCESS_FAILED") from None
    return image


def _known_photo(call: Call, source: StoredFile) -> list[dict[str, Any]]:
    for conv in call.world.conversations.values():
        for m in [*conv.messages.values(), *conv.deleted.values()]:
            for size in m.get("photo", []):
                if size["file_id"] == source.file_id:
                    return copy.deepcopy(m["photo"])
    raise bad_request("wrong file identifier/HTTP URL specified")


def _photo_sizes(call: Call, source: Upload, image: Any) -> list[dict[str, Any]]:
    """Store the photo and Telegram-like smaller sizes (JPEG thumbnails)."""
    w = call.world
    width, height = image.size
    sizes: list[dict[str, Any]] = []
    for edge in (90, 320, 800):
        if max(width, height) > edge:
            thumb = image.convert("RGB")
            thumb.thumbnail((edge, edge))
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=80)
            f = _store_file(w, buf.getvalue(), "photos", ".jpg", mime_type="image/jpeg")
            sizes.append(_size(f, *thumb.size))
    # The largest size keeps the uploaded bytes so a download returns what was sent.
    f = _store_file(w, source.data, "photos", ".jpg", mime_type="image/jpeg")
    sizes.append(_size(f, width, height))
    return sizes


def _size(f: StoredFile, width: int, height: int) -> dict[str, Any]:
    return {
        "file_id": f.file_id,
        "file_unique_id": f.file_unique_id,
        "file_size": len(f.data),
        "width": width,
        "height": height,
    }


def _media_body(call: Call) -> dict[str, Any]:
    text, entities = caption(call)
    body: dict[str, Any] = {}
    if text:
        body["caption"] = text
    if entities:
        body["caption_entities"] = entities
    return body


@method("sendPhoto")
async def send_photo(call: Call) -> dict[str, Any]:
    conv = target(call)
    source = _upload(call, "photo")
    body = _media_body(call)
    markup = reply_markup(call)
    image = _open_image(call, source)
    known = _known_photo(call, source) if isinstance(source, StoredFile) else None
    thread_of(call, conv, reply_to(call, conv))
    admit_probe(call, conv)
    body["photo"] = known if known is not None else _photo_sizes(call, source, image)  # type: ignore[arg-type]
    return send(call, conv, body, markup)


@method("sendDocument")
async def send_document(call: Call) -> dict[str, Any]:
    conv = target(call)
    source = _upload(call, "document")
    body = _media_body(call)
    markup = reply_markup(call)
    thread_of(call, conv, reply_to(call, conv))
    admit_probe(call, conv)
    if isinstance(source, StoredFile):
        f = source
    else:
        if len(source.data) > call.world.limits.upload_max_bytes:
            raise ApiError(413, "Request Entity Too Large")
        name = source.filename or "document"
        mime = (
            source.content_type
            if source.content_type not in ("", "application/octet-stream")
            else mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        ext = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        f = _store_file(call.world, source.data, "documents", ext, mime_type=mime, file_name=name)
    doc: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id}
    if f.file_name:
        doc["file_name"] = f.file_name
    if f.mime_type:
        doc["mime_type"] = f.mime_type
    doc["file_size"] = len(f.data)
    body["document"] = doc
    return send(call, conv, body, markup)


def admit_probe(call: Call, conv: Conversation) -> None:
    """Check the rate limit before storing uploaded files, so a 429 leaves no trace."""
    w = call.world
    if not w.enforce_limits:
        return
    chat_id = conv.chat["id"]
    wait = w.limiter.wait(call.bot.id, chat_id, w.is_group(chat_id), w.now())
    if wait > 0:
        raise E.too_many_requests(retry_after_seconds(wait))


@method("getFile")
async def get_file(call: Call) -> dict[str, Any]:
    f = call.world.files.get(call.p.string("file_id") or "")
    if f is None:
        raise bad_request("invalid file_id")
    if len(f.data) > call.world.limits.download_max_bytes:
        raise bad_request("file is too big")
    return {
        "file_id": f.file_id,
        "file_unique_id": f.file_unique_id,
        "file_size": len(f.data),
        "file_path": f.file_path,
    }


# -- chats ------------------------------------------------------------------------------------


def _group_of(call: Call, conv: Conversation) -> Group | None:
    return call.world.groups.get(conv.chat["id"])


@method("leaveChat")
async def leave_chat(call: Call) -> bool:
    conv = target(call, sending=False)
    group = _group_of(call, conv)
    if group is None:
        raise bad_request("chat member status can't be changed in private chats")
    old = group.status[call.bot.id]
    group.status[call.bot.id] = "left"
    call.world.left_chats.append((call.bot.id, group.id))
    call.world.chat_member_update(call.bot, group, old, "left")
    call.world.emit("chat_member", conv, None, bot_id=call.bot.id, status="left")
    return True


@method("getChat")
async def get_chat(call: Call) -> dict[str, Any]:
    conv = target(call, sending=False)
    return {
        **conv.chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


def _member(call: Call, member_id: int, status: str, group: Group | None = None) -> dict[str, Any]:
    user = call.world.member_user(member_id)
    if status == "creator":
        return {"status": "creator", "user": user, "is_anonymous": False}
    if status == "administrator":
        bot = member_id == call.bot.id
        rights = group.admin_rights_of(member_id, bot) if group else admin_rights(bot)
        return {"status": "administrator", "user": user, **rights}
    if status == "kicked":
        return {"status": "kicked", "user": user, "until_date": 0}
    return {"status": status, "user": user}


@method("getChatMember")
async def get_chat_member(call: Call) -> dict[str, Any]:
    conv = target(call, sending=False)
    member_id = call.p.integer("user_id")
    if member_id is None or (
        member_id not in call.world.users and member_id not in call.world.bots
    ):
        raise bad_request("user not found")
    group = _group_of(call, conv)
    if group is None:
        status = "member" if member_id in (conv.chat["id"], call.bot.id) else "left"
    else:
        status = group.status.get(member_id, "left")
    return _member(call, member_id, status, group)


@method("getChatAdministrators")
async def get_chat_administrators(call: Call) -> list[dict[str, Any]]:
    conv = target(call, sending=False)
    group = _group_of(call, conv)
    if group is None:
        raise bad_request("there are no administrators in the private chat")
    return [
        _member(call, mid, st, group)
        for mid, st in group.status.items()
        if st in ("creator", "administrator")
    ]


@method("getChatMemberCount")
async def get_chat_member_count(call: Call) -> int:
    conv = target(call, sending=False)
    group = _group_of(call, conv)
    if group is None:
        return 2
    return sum(1 for st in group.status.values() if st in ACTIVE)
