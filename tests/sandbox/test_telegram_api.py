"""The /sandbox/api endpoints the demo page and e2e tests use to play the humans."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient, TestServer

from piyasa.sandbox.telegram import SandboxClock, TelegramSandbox

TOKEN = "42:sandbox-token"
GROUP = -1001000000001


@pytest.fixture
async def setup():
    sb = TelegramSandbox(clock=SandboxClock())
    sb.add_bot(TOKEN, "piyasa_fx_bot", "FX")
    sb.add_user(1001, "Ayşe", "ayse")
    sb.add_group(GROUP, "BIST Sohbet", members=[42, 1001])
    client = TestClient(TestServer(sb.make_app()))
    await client.start_server()
    yield sb, client
    await client.close()


async def bot_call(client: TestClient, method: str, **params):
    resp = await client.post(f"/bot{TOKEN}/{method}", json=params)
    return resp.status, await resp.json()


async def test_state_lists_bots_users_and_chats(setup) -> None:
    _sb, client = setup
    body = await (await client.get("/sandbox/api/state")).json()
    assert [b["username"] for b in body["bots"]] == ["piyasa_fx_bot"]
    assert [u["id"] for u in body["users"]] == [1001]
    group = next(c for c in body["chats"] if c["id"] == GROUP)
    assert {m["id"] for m in group["members"]} == {42, 1001}


async def test_post_message_reaches_the_bot_and_the_history(setup) -> None:
    _sb, client = setup
    resp = await client.post(
        "/sandbox/api/messages", json={"user_id": 1001, "chat_id": GROUP, "text": "/kur USD"}
    )
    assert resp.status == 200
    posted = (await resp.json())["message"]
    assert posted["entities"][0]["type"] == "bot_command"

    status, updates = await bot_call(
        client, "getUpdates", allowed_updates=["message", "callback_query"]
    )
    assert status == 200
    assert [u["message"]["text"] for u in updates["result"]] == ["/kur USD"]

    status, sent = await bot_call(
        client,
        "sendMessage",
        chat_id=GROUP,
        text="USD/TRY 41,2",
        reply_parameters={"message_id": posted["message_id"]},
        reply_markup={"inline_keyboard": [[{"text": "Yenile", "callback_data": "fx:refresh"}]]},
    )
    assert status == 200 and sent["result"]["reply_to_message"]["text"] == "/kur USD"

    history = await (await client.get(f"/sandbox/api/chats/{GROUP}/messages")).json()
    assert [m["text"] for m in history["messages"]] == ["/kur USD", "USD/TRY 41,2"]
    after = await (
        await client.get(f"/sandbox/api/chats/{GROUP}/messages?after_id={posted['message_id']}")
    ).json()
    assert [m["text"] for m in after["messages"]] == ["USD/TRY 41,2"]
    assert after["messages"][0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yenile"

    press = await client.post(
        "/sandbox/api/press",
        json={
            "user_id": 1001,
            "chat_id": GROUP,
            "message_id": sent["result"]["message_id"],
            "callback_data": "fx:refresh",
        },
    )
    qid = (await press.json())["callback_query_id"]
    _, updates = await bot_call(client, "getUpdates", offset=updates["result"][-1]["update_id"] + 1)
    assert [u["callback_query"]["id"] for u in updates["result"]] == [qid]


async def test_private_messages_and_bad_requests(setup) -> None:
    _sb, client = setup
    resp = await client.post(
        "/sandbox/api/messages", json={"user_id": 1001, "bot_id": 42, "text": "merhaba"}
    )
    assert resp.status == 200
    status, _ = await bot_call(client, "sendMessage", chat_id=1001, text="Hoş geldin")
    assert status == 200
    history = await (await client.get("/sandbox/api/chats/1001/messages?bot_id=42")).json()
    assert [m["text"] for m in history["messages"]] == ["merhaba", "Hoş geldin"]

    missing = await client.post("/sandbox/api/messages", json={"user_id": 1001, "text": "?"})
    assert missing.status == 400
    forged = await client.post(
        "/sandbox/api/press",
        json={"user_id": 1001, "chat_id": 1001, "message_id": 2, "callback_data": "nope"},
    )
    assert forged.status == 400 and "no button" in (await forged.json())["error"]


async def test_events_long_poll_wakes_on_new_message(setup) -> None:
    sb, client = setup
    start = sb.mark()
    poll = asyncio.create_task(client.get(f"/sandbox/api/events?after={start}&timeout=5"))
    await sb.send_user_message(1001, GROUP, "canlı")
    body = await (await poll).json()
    assert [e["message"]["text"] for e in body["events"] if e["type"] == "message"] == ["canlı"]
    assert body["last"] == sb.mark()


async def test_bot_api_accepts_query_string_and_urlencoded(setup) -> None:
    sb, client = setup
    resp = await client.get(f"/bot{TOKEN}/getMe")
    assert (await resp.json())["result"]["username"] == "piyasa_fx_bot"
    resp = await client.post(
        f"/bot{TOKEN}/sendMessage?chat_id={GROUP}",
        data={
            "text": "form",
            "reply_markup": '{"inline_keyboard":[[{"text":"a","callback_data":"b"}]]}',
        },
    )
    body = await resp.json()
    assert (
        body["ok"]
        and body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "b"
    )
    assert (
        sb.calls("sendmessage")[-1]["params"]["reply_markup"]["inline_keyboard"][0][0]["text"]
        == "a"
    )
    resp = await client.post("/bot1:wrong/getMe")
    assert resp.status == 401 and (await resp.json())["description"] == "Unauthorized"
