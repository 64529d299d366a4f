"""The sandbox OpenAI server, driven by the real openai SDK as Piyasa's LLM code drives it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from aiohttp import web

from piyasa.sandbox.chatter import detect_topic
from piyasa.sandbox.llm_server import FakeOpenAIServer, count_tokens
from tests.waiting import HANG_S, finishes

KEY = "sk-test-0123456789"
MODEL = "gpt-4o-mini"
LONG_SYSTEM = "Sen bir piyasa botusun. Konu: BIST. " + " ".join(
    f"kural{i}: kısa ve net yaz." for i in range(400)
)


@pytest.fixture
async def server() -> AsyncIterator[tuple[FakeOpenAIServer, str]]:
    srv = FakeOpenAIServer(api_keys={KEY}, latency=(0.0, 0.0), seed=1)
    base_url = await srv.start("127.0.0.1", 0)
    yield srv, base_url
    await srv.stop()


@pytest.fixture
async def client(server: tuple[FakeOpenAIServer, str]) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=KEY, base_url=server[1], max_retries=0) as c:
        yield c


def chat(text: str = "Konu: BIST. Kısa bir yorum yaz.") -> list[dict[str, str]]:
    return [{"role": "system", "content": "Dil: tr"}, {"role": "user", "content": text}]


async def test_base_url_is_what_the_sdk_wants(server: tuple[FakeOpenAIServer, str]) -> None:
    assert server[1].startswith("http://127.0.0.1:")
    assert server[1].endswith("/v1")


async def test_models_list_and_retrieve_with_good_key(client: openai.AsyncOpenAI) -> None:
    ids = [m.id async for m in client.models.list()]
    assert ids == ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
    model = await client.models.retrieve("gpt-4o")
    assert (model.id, model.object) == ("gpt-4o", "model")
    with pytest.raises(openai.NotFoundError) as err:
        await client.models.retrieve("gpt-9")
    assert err.value.code == "model_not_found"


async def test_bad_key_raises_authentication_error_without_echoing_it(
    server: tuple[FakeOpenAIServer, str],
) -> None:
    bad_key = "sk-wrong-secret-987654321"
    async with openai.AsyncOpenAI(api_key=bad_key, base_url=server[1], max_retries=0) as c:
        with pytest.raises(openai.AuthenticationError) as err:
            await c.models.list()
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model=MODEL, messages=chat())
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    assert err.value.type == "invalid_request_error"
    assert bad_key not in err.value.message


async def test_missing_key_gets_openai_error_shape(server: tuple[FakeOpenAIServer, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server[1]}/models") as resp:
            assert resp.status == 401
            body = await resp.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert "API key" in body["error"]["message"]


async def test_unknown_url_is_a_json_404(server: tuple[FakeOpenAIServer, str]) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server[1]}/nope", headers={"Authorization": f"Bearer {KEY}"}) as r:
            assert r.status == 404
            assert "Invalid URL" in (await r.json())["error"]["message"]


async def test_chat_completion_shape_and_usage(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(model=MODEL, messages=chat())
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == MODEL
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason == "stop"
    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens == count_tokens(choice.message.content)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


async def test_n_returns_that_many_choices(client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(model=MODEL, messages=chat(), n=3)
    assert [c.index for c in resp.choices] == [0, 1, 2]
    assert resp.usage.completion_tokens == sum(
        count_tokens(c.message.content) for c in resp.choices
    )


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
async def test_token_cap_truncates_with_finish_reason_length(
    client: openai.AsyncOpenAI, param: str
) -> None:
    resp = await client.chat.completions.create(model=MODEL, messages=chat(), **{param: 3})
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage.completion_tokens == 3
    assert 0 < len(resp.choices[0].message.content) <= 12


async def test_repeated_long_prompt_reports_cached_tokens(
    server: tuple[FakeOpenAIServer, str], client: openai.AsyncOpenAI
) -> None:
    messages = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "yaz"}]
    first = await client.chat.completions.create(model=MODEL, messages=messages)
    assert first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details.cached_tokens == 0

    follow_up = [
        *messages,
        {"role": "assistant", "content": "tamam"},
        {"role": "user", "content": "devam"},
    ]
    second = await client.chat.completions.create(model=MODEL, messages=follow_up)
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024
    assert cached % 128 == 0
    assert cached <= first.usage.prompt_tokens

    other_model = await client.chat.completions.create(model="gpt-4o", messages=messages)
    assert other_model.usage.prompt_tokens_details.cached_tokens == 0


async def test_short_prompts_are_never_cached(client: openai.AsyncOpenAI) -> None:
    for _ in range(2):
        resp = await client.chat.completions.create(model=MODEL, messages=chat())
    assert resp.usage.prompt_tokens_details.cached_tokens == 0


async def test_streaming_with_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL, messages=chat(), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[-2].choices[0].finish_reason == "stop"
    final = chunks[-1]
    assert final.choices == []
    assert final.usage.completion_tokens == count_tokens(text)
    assert all(c.usage is None for c in chunks[:-1])


async def test_streaming_without_usage_has_no_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model=MODEL, messages=chat(), stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_topic_reaches_recorded_request_and_shapes_reply(
    server: tuple[FakeOpenAIServer, str], client: openai.AsyncOpenAI
) -> None:
    srv = server[0]
    messages = [
        {"role": "system", "content": "You are a market bot. Topic: crypto. Language: en"},
        {"role": "user", "content": "Write the next message."},
    ]
    resp = await client.chat.completions.create(model=MODEL, messages=messages)
    assert srv.requests[-1]["messages"] == messages
    assert detect_topic(srv.requests[-1]["messages"][0]["content"]) == "crypto"
    assert any(w in resp.choices[0].message.content for w in ("BTC", "ETH", "SOL", "crypto"))


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        (None, "missing_required_parameter"),
        ([], "empty_array"),
        ([{"role": "robot", "content": "hi"}], "invalid_value"),
        ([{"content": "hi"}], "missing_required_parameter"),
    ],
)
async def test_bad_body_is_400(
    server: tuple[FakeOpenAIServer, str], client: openai.AsyncOpenAI, messages: object, code: str
) -> None:
    body = {"model": MODEL} if messages is None else {"model": MODEL, "messages": messages}
    with pytest.raises(openai.BadRequestError) as err:
        await client.post("/chat/completions", body=body, cast_to=object)
    assert err.value.code == code
    assert server[0].stats[400] == 1


async def test_unknown_model_is_404(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(model="gpt-nope", messages=chat())
    assert err.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_injected_failures_map_to_sdk_errors(
    server: tuple[FakeOpenAIServer, str],
    client: openai.AsyncOpenAI,
    status: int,
    error: type[openai.APIStatusError],
) -> None:
    server[0].inject(status=status, count=1)
    with pytest.raises(error) as err:
        await client.chat.completions.create(model=MODEL, messages=chat())
    assert err.value.status_code == status
    # The fault is consumed: the next call succeeds.
    resp = await client.chat.completions.create(model=MODEL, messages=chat())
    assert resp.choices[0].message.content
    assert server[0].stats == {status: 1, 200: 1}


async def test_injected_429_carries_retry_after_and_openai_body(
    server: tuple[FakeOpenAIServer, str], client: openai.AsyncOpenAI
) -> None:
    server[0].inject(status=429, count=1, retry_after=2.0)
    with pytest.raises(openai.RateLimitError) as err:
        await client.chat.completions.create(model=MODEL, messages=chat())
    assert err.value.response.headers["retry-after"] == "2"
    assert err.value.code == "rate_limit_exceeded"
    assert "Rate limit reached" in err.value.message


async def test_sdk_retries_succeed_after_injected_429s(
    server: tuple[FakeOpenAIServer, str],
) -> None:
    server[0].inject(status=429, count=2, retry_after=0.05)
    async with openai.AsyncOpenAI(api_key=KEY, base_url=server[1], max_retries=2) as c:
        resp = await c.chat.completions.create(model=MODEL, messages=chat())
    assert resp.choices[0].message.content
    assert server[0].stats == {429: 2, 200: 1}


async def test_sdk_waits_the_retry_after_the_server_asked_for(
    server: tuple[FakeOpenAIServer, str],
) -> None:
    # Without the header the SDK's first backoff is at most 0.5 s; 1 s proves it obeyed us.
    server[0].inject(status=429, count=1, retry_after=1.0)
    async with openai.AsyncOpenAI(api_key=KEY, base_url=server[1]) as c:
        started = time.monotonic()
        await c.chat.completions.create(model=MODEL, messages=chat())
    assert time.monotonic() - started >= 1.0


async def test_set_failing_is_an_outage_until_cleared(
    server: tuple[FakeOpenAIServer, str], client: openai.AsyncOpenAI
) -> None:
    srv = server[0]
    srv.set_failing(status=500)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model=MODEL, messages=chat())
    with pytest.raises(openai.InternalServerError):
        await client.models.list()
    srv.set_failing(None)
    resp = await client.chat.completions.create(model=MODEL, messages=chat())
    assert resp.choices[0].message.content
    assert srv.stats[500] == 4


async def test_injected_hang_times_out_the_client(
    server: tuple[FakeOpenAIServer, str], client: openai.AsyncOpenAI
) -> None:
    server[0].inject(timeout=True, count=1)
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model=MODEL, messages=chat(), timeout=0.3)
    assert server[0].stats["timeout"] == 1
    resp = await client.chat.completions.create(model=MODEL, messages=chat(), timeout=HANG_S)
    assert resp.choices[0].message.content


async def test_stop_releases_hanging_requests() -> None:
    # A hang far longer than the ceiling: stop() only returns in time if it ends the hang.
    srv = FakeOpenAIServer(api_keys={KEY}, latency=(0.0, 0.0), seed=2, max_hang=10 * HANG_S)
    base_url = await srv.start()
    srv.set_failing(timeout=True)
    async with openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0) as c:
        with pytest.raises(openai.APITimeoutError):
            await c.models.list(timeout=0.2)
    await finishes(srv.stop(), "stop() to release the hanging request")


def test_latency_is_validated_and_changeable() -> None:
    srv = FakeOpenAIServer(latency=(0.05, 0.5))
    srv.latency = (0.0, 0.0)
    assert srv.latency == (0.0, 0.0)
    with pytest.raises(ValueError):
        srv.latency = (1.0, 0.5)


async def test_same_seed_gives_same_replies() -> None:
    replies = []
    for _ in range(2):
        srv = FakeOpenAIServer(api_keys={KEY}, latency=(0.0, 0.0), seed=7)
        base_url = await srv.start()
        async with openai.AsyncOpenAI(api_key=KEY, base_url=base_url, max_retries=0) as c:
            resp = await c.chat.completions.create(model=MODEL, messages=chat())
        replies.append(resp.choices[0].message.content)
        await srv.stop()
    assert replies[0] == replies[1]


async def test_app_mounts_inside_another_aiohttp_app() -> None:
    srv = FakeOpenAIServer(api_keys={KEY}, latency=(0.0, 0.0), seed=3)
    parent = web.Application()
    parent.add_subapp("/openai", srv.make_app())
    runner = web.AppRunner(parent)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with openai.AsyncOpenAI(
            api_key=KEY, base_url=f"http://127.0.0.1:{port}/openai/v1", max_retries=0
        ) as c:
            resp = await c.chat.completions.create(model=MODEL, messages=chat())
        assert resp.choices[0].message.content
        assert srv.stats == {200: 1}
    finally:
        await runner.cleanup()
