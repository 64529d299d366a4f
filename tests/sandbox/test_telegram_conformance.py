"""The sandbox as aiogram sees it: real ``Bot`` calls over HTTP, Telegram's answers back."""

from __future__ import annotations

import asyncio
import io

import pytest
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import ClientSession, web

from piyasa.sandbox.telegram import SandboxClock, TelegramSandbox
from tests.waiting import HANG_S, finishes

TOKEN = "123456:ABC-def"
BOT_ID = 123456
GROUP = -1001000000001
AYSE, MEHMET = 1001, 1002


def make_bot(base: str, token: str = TOKEN) -> Bot:
    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(base)))


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock()


@pytest.fixture
async def sb(clock: SandboxClock):
    sandbox = TelegramSandbox(clock=clock)
    sandbox.add_bot(TOKEN, "piyasa_admin_bot", "Piyasa Admin")
    sandbox.add_user(AYSE, "Ayşe", "ayse", "tr")
    sandbox.add_user(MEHMET, "Mehmet", "mehmet", "tr")
    sandbox.add_group(GROUP, "BIST Sohbet", members=[BOT_ID, AYSE, MEHMET])
    await sandbox.start()
    yield sandbox
    await sandbox.stop()


@pytest.fixture
async def bot(sb: TelegramSandbox):
    assert sb.base_url
    b = make_bot(sb.base_url)
    yield b
    await b.session.close()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=d.upper(), callback_data=d) for d in data]]
    )


def png_bytes(width: int = 400, height: int = 300) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


async def test_get_me_reports_the_bot_behind_the_token(bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (BOT_ID, "piyasa_admin_bot", True)


async def test_unknown_token_is_unauthorized(sb: TelegramSandbox) -> None:
    assert sb.base_url
    stranger = make_bot(sb.base_url, "999:nope")
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()
    async with ClientSession() as http:
        async with http.post(f"{sb.base_url}/bot{TOKEN}/sendCarrierPigeon") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_send_edit_press_and_answer(sb: TelegramSandbox, bot: Bot, clock) -> None:
    msg = await bot.send_message(
        GROUP, "<b>BIST</b> &amp; kur", parse_mode="HTML", reply_markup=keyboard("yes", "no")
    )
    assert msg.message_id == 1 and msg.text == "BIST & kur"
    assert msg.entities and msg.entities[0].type == "bold"
    assert msg.reply_markup and msg.reply_markup.inline_keyboard[0][1].callback_data == "no"

    clock.advance(1)
    edited = await bot.edit_message_text(
        "BIST yükseldi", chat_id=GROUP, message_id=1, reply_markup=keyboard("yes", "no")
    )
    assert edited.text == "BIST yükseldi" and edited.edit_date
    assert [m["text"] for m in sb.sent(chat_id=GROUP)] == ["BIST yükseldi"]
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "BIST yükseldi", chat_id=GROUP, message_id=1, reply_markup=keyboard("yes", "no")
        )
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=GROUP, message_id=99)

    with pytest.raises(LookupError):
        await sb.press_button(AYSE, GROUP, 1, "maybe")
    qid = await sb.press_button(AYSE, GROUP, 1, "yes")
    updates = await bot.get_updates(allowed_updates=["callback_query"])
    presses = [u.callback_query for u in updates if u.callback_query]
    assert len(presses) == 1
    press = presses[0]
    assert (press.id, press.data, press.from_user.id) == (qid, "yes", AYSE)
    assert press.message and press.message.message_id == 1

    assert await bot.answer_callback_query(press.id, text="Tamam", show_alert=True)
    assert sb.callback_answers[-1]["text"] == "Tamam" and sb.callback_answers[-1]["show_alert"]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(press.id, text="again")

    late = await sb.press_button(MEHMET, GROUP, 1, "no")
    clock.advance(sb.limits.callback_answer_timeout + 1)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(late)
    with pytest.raises(TelegramBadRequest):
        await bot.answer_callback_query(await sb.press_button(AYSE, GROUP, 1, "no"), text="x" * 201)


async def test_dispatcher_polling_answers_a_user(sb: TelegramSandbox, bot: Bot) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Merhaba {message.from_user.first_name}")  # type: ignore[union-attr]

    dp = Dispatcher()
    dp.include_router(router)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        await sb.wait_for_poller(BOT_ID, timeout=HANG_S)
        await sb.send_private(AYSE, BOT_ID, "/start")
        reply = await sb.wait_for_message(chat_id=AYSE, timeout=HANG_S)
        assert reply["text"] == "Merhaba Ayşe"
        assert reply["chat"] == {
            "id": AYSE,
            "type": "private",
            "first_name": "Ayşe",
            "username": "ayse",
        }
    finally:
        await dp.stop_polling()
        await polling


async def test_user_commands_get_entities_with_bot_suffix(sb: TelegramSandbox, bot: Bot) -> None:
    await sb.send_user_message(AYSE, GROUP, "/health@piyasa_admin_bot now @mehmet")
    updates = await bot.get_updates()
    msg = next(u.message for u in updates if u.message and u.message.text)
    types = [(e.type, e.offset, e.length) for e in msg.entities or []]
    assert types == [("bot_command", 0, 24), ("mention", 29, 7)]


async def test_callback_data_over_64_bytes_is_refused(sb: TelegramSandbox, bot: Bot) -> None:
    raw = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="é" * 32 + "a")]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(GROUP, "hi", reply_markup=raw)
    wide = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=str(i), callback_data=str(i)) for i in range(9)]
        ]
    )
    with pytest.raises(TelegramBadRequest, match="reply markup is too long"):
        await bot.send_message(GROUP, "hi", reply_markup=wide)
    assert sb.sent() == []


async def test_text_limits_count_visible_characters(sb: TelegramSandbox, bot: Bot, clock) -> None:
    ok = await bot.send_message(GROUP, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    assert len(ok.text or "") == 4096
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(GROUP, "a" * 4097)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(GROUP, "<b>kapanmadı", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(GROUP, "1.5 puan", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(GROUP, "  <i></i> ", parse_mode="HTML")
    assert len(sb.sent()) == 1


async def test_group_burst_gets_429_with_exact_retry_after(
    sb: TelegramSandbox, bot: Bot, clock: SandboxClock
) -> None:
    for i in range(3):
        await bot.send_message(GROUP, f"burst {i}")
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(GROUP, "one too many")
    assert exc.value.retry_after == 1
    for i in range(17):  # 1 msg/s refills the bucket; the 20/min window is the next wall
        clock.advance(1)
        await bot.send_message(GROUP, f"steady {i}")
    clock.advance(1)
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(GROUP, "21st within a minute")
    assert exc.value.retry_after == 42  # the first three left the window at t = 60
    assert len(sb.sent(chat_id=GROUP)) == 20
    refused = sb.calls("sendMessage")[-1]
    assert (refused["ok"], refused["error_code"]) == (False, 429)
    clock.advance(42)
    await bot.send_message(GROUP, "window moved")
    assert len(sb.sent(chat_id=GROUP)) == 21


async def test_greedy_sender_achieves_allowed_max(
    sb: TelegramSandbox, bot: Bot, clock: SandboxClock
) -> None:
    sb.add_group(-1001000000002, "FX", members=[BOT_ID, AYSE])
    await sb.send_private(AYSE, BOT_ID, "/start")
    chats = [GROUP, -1001000000002, AYSE]
    sent = 0
    for second in range(65):
        for chat in chats:
            while True:
                try:
                    await bot.send_message(chat, f"t={second}")
                except TelegramRetryAfter:
                    break
                sent += 1
        clock.advance(1)
    assert (
        sent == sb.allowed_max(chats, bot_count=1, seconds=65) == 27 + 27 + 67
    )  # groups: 20 by t=17, 7 more from t=60


async def test_photo_and_document_upload_and_download(sb: TelegramSandbox, bot: Bot) -> None:
    png = png_bytes()
    photo_msg = await bot.send_photo(
        GROUP, BufferedInputFile(png, "chart.png"), caption="<i>Grafik</i>", parse_mode="HTML"
    )
    assert photo_msg.caption == "Grafik"
    assert photo_msg.photo and (photo_msg.photo[-1].width, photo_msg.photo[-1].height) == (400, 300)
    assert [p.width for p in photo_msg.photo] == [90, 320, 400]
    downloaded = await bot.download(photo_msg.photo[-1])
    assert downloaded is not None and downloaded.read() == png

    data = "tarih;kapanış\n2026-01-02;10.5\n".encode()
    doc_msg = await bot.send_document(
        AYSE if False else GROUP, BufferedInputFile(data, "rapor.csv")
    )
    assert doc_msg.document and doc_msg.document.file_name == "rapor.csv"
    assert doc_msg.document.mime_type == "text/csv"
    assert doc_msg.document.file_size == len(data)
    info = await bot.get_file(doc_msg.document.file_id)
    assert info.file_path and info.file_path.endswith(".csv")
    got = await bot.download(doc_msg.document)
    assert got is not None and got.read() == data

    again = await bot.send_document(GROUP, doc_msg.document.file_id)
    assert again.document and again.document.file_unique_id == doc_msg.document.file_unique_id
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(GROUP, BufferedInputFile(b"not an image", "x.png"))
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_document(GROUP, doc_msg.document.file_id, caption="c" * 1025)
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(GROUP, "no-such-file-id")


async def test_two_pollers_conflict(sb: TelegramSandbox, bot: Bot) -> None:
    assert sb.base_url
    pending = await bot.get_updates()  # the my_chat_member update from joining the group
    first = asyncio.create_task(bot.get_updates(offset=pending[-1].update_id + 1, timeout=5))
    await sb.wait_for_poller(BOT_ID, timeout=HANG_S)
    second = make_bot(sb.base_url)
    try:
        assert await second.get_updates(timeout=0) == []
    finally:
        await second.session.close()
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first


async def test_webhook_delivery_with_secret_and_retry(sb: TelegramSandbox, bot: Bot) -> None:
    received: asyncio.Queue[tuple[str | None, dict]] = asyncio.Queue()
    attempts = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        received.put_nowait(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=500 if attempts == 1 else 200)

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await bot.set_webhook(
            f"http://127.0.0.1:{port}/tg", secret_token="s3cr3t-tok", drop_pending_updates=True
        )
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()
        await sb.send_private(AYSE, BOT_ID, "/start")
        first = await finishes(received.get(), "the webhook's first delivery")
        second = await finishes(received.get(), "the webhook's retry after the 500")
        assert first == second  # refused with 500, delivered again unchanged
        assert second[0] == "s3cr3t-tok"
        assert second[1]["message"]["text"] == "/start"
        info = await bot.get_webhook_info()
        assert info.url.endswith("/tg") and info.last_error_message
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()


async def test_delete_leave_block_and_unstarted_chats(sb: TelegramSandbox, bot: Bot) -> None:
    msg = await bot.send_message(GROUP, "silinecek")
    assert await bot.delete_message(GROUP, msg.message_id)
    assert sb.deleted == [(GROUP, msg.message_id)]
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(GROUP, msg.message_id)

    assert await bot.leave_chat(GROUP)
    assert sb.left_chats == [(BOT_ID, GROUP)]
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(GROUP, "hala burada mıyım?")
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(-1009999, "nowhere")

    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(MEHMET, "merhaba")
    await sb.send_private(MEHMET, BOT_ID, "/start")
    await bot.send_message(MEHMET, "merhaba")
    sb.block_bot(MEHMET, BOT_ID)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(MEHMET, "merhaba?")
    kinds = [
        u.my_chat_member.new_chat_member.status for u in await bot.get_updates() if u.my_chat_member
    ]
    assert kinds == ["member", "left", "kicked"]


async def test_commands_per_scope_and_language(bot: Bot) -> None:
    admin_scope = BotCommandScopeChat(chat_id=GROUP)
    await bot.set_my_commands([BotCommand(command="help", description="Yardım")])
    await bot.set_my_commands(
        [BotCommand(command="health", description="Health")], scope=admin_scope, language_code="en"
    )
    assert [c.command for c in await bot.get_my_commands()] == ["help"]
    assert [
        c.command for c in await bot.get_my_commands(scope=admin_scope, language_code="en")
    ] == ["health"]
    assert await bot.get_my_commands(scope=admin_scope) == []
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == []
    with pytest.raises(TelegramBadRequest):
        await bot.set_my_commands([BotCommand(command="Bad Command", description="x")])


async def test_chat_queries_parse_as_aiogram_types(sb: TelegramSandbox, bot: Bot) -> None:
    sb.set_admin(GROUP, AYSE)
    chat = await bot.get_chat(GROUP)
    assert (chat.title, chat.type) == ("BIST Sohbet", "supergroup")
    member = await bot.get_chat_member(GROUP, MEHMET)
    assert member.status == "member"
    admins = await bot.get_chat_administrators(GROUP)
    assert [a.user.id for a in admins] == [AYSE]
    assert await bot.send_chat_action(GROUP, "typing")


async def test_injected_errors(sb: TelegramSandbox, bot: Bot) -> None:
    sb.inject_error(method="sendMessage", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as exc:
        await bot.send_message(GROUP, "x")
    assert exc.value.retry_after == 7
    await bot.send_message(GROUP, "y")
    sb.inject_error(token=TOKEN, error_code=403, count=None)
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError):
            await bot.get_me()
    sb.clear_errors()
    assert (await bot.get_me()).id == BOT_ID
    assert [m["text"] for m in sb.sent()] == ["y"]
