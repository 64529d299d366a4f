"""A local server that speaks the OpenAI REST API, for tests, benchmarks and demo mode.

Piyasa's LLM code talks to it through the real ``openai`` SDK, so it has to be faithful to the
wire protocol: the same paths, JSON shapes, status codes, error bodies and headers
(``retry-after``) as api.openai.com. Faults can be injected to exercise retry, timeout and
circuit-breaker paths without monkeypatching the client.

Token counting is a deterministic estimate, not a real BPE tokenizer: text is cut into pieces
of up to 4 non-space characters (each piece carries the whitespace before it), so a word costs
at least one token and long words about one per 4 characters. Every message adds 3 tokens of
framing (start, role, end) and the reply is primed with 2 more, roughly like OpenAI's chat
format. Prompt caching follows OpenAI's documented rule: a prompt of >= 1024 tokens whose
prefix was seen recently for the same API key and model reports the matched prefix as
``cached_tokens``, in steps of 128 tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import random
import re
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from piyasa.sandbox.chatter import OfflineGenerator
from piyasa.tasks import wait_for

__all__ = ["FakeOpenAIServer", "count_tokens", "prompt_tokens", "tokenize"]

log = logging.getLogger(__name__)

DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
CACHE_MIN_TOKENS = 1024
CACHE_STEP = 128
_VALID_ROLES = ("system", "assistant", "user", "function", "tool", "developer")
_TOKEN_RE = re.compile(r"\s*\S{1,4}")
_IMAGE_TOKENS = 85  # OpenAI's flat cost of a low-detail image

Generator = Callable[[Sequence[dict[str, Any]]], str]


def tokenize(text: str) -> list[str]:
    """Cut text into pseudo-tokens (see module docstring); "".join() gives the text back."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    """The estimated token count of a text: ~1 per 4 characters, at least 1 per word."""
    return len(_TOKEN_RE.findall(text))


def _content_tokens(content: Any) -> list[str]:
    if isinstance(content, str):
        return tokenize(content)
    tokens: list[str] = []
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                tokens += tokenize(part["text"])
            elif part.get("type") in ("image_url", "input_image"):
                tokens += ["<|image|>"] * _IMAGE_TOKENS
    return tokens


def prompt_tokens(messages: Iterable[dict[str, Any]]) -> list[str]:
    """The pseudo-token sequence of a chat prompt, framing included, in prompt order."""
    tokens: list[str] = []
    for message in messages:
        tokens += ["<|start|>", str(message.get("role"))]
        if message.get("name"):
            tokens += tokenize(str(message["name"]))
        tokens += _content_tokens(message.get("content"))
        if message.get("tool_calls"):
            tokens += tokenize(json.dumps(message["tool_calls"], sort_keys=True))
        tokens.append("<|end|>")
    return [*tokens, "<|start|>", "assistant"]


# --------------------------------------------------------------------------- errors

# status -> (type, code, message); messages follow api.openai.com's wording.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (injected by the sandbox)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    408: ("invalid_request_error", None, "Request timed out."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-sandbox on requests per min (RPM): "
        "Limit 500, Used 500, Requested 1. Please try again in {wait}. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


class _APIError(Exception):
    """An error answered in OpenAI's JSON shape; raised anywhere inside a handler."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = (
            status,
            message,
            type_,
            code,
            param,
        )
        self.headers = headers or {}

    def response(self) -> web.Response:
        body = {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
        return web.json_response(body, status=self.status, headers=self.headers)


def _mask(key: str) -> str:
    """OpenAI echoes a masked key in 401s; never echo a whole secret."""
    return f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 10 else "*" * 8


def _fault_error(fault: _Fault, model: str, key: str) -> _APIError:
    type_, code, template = _ERRORS.get(
        fault.status,
        (
            "server_error" if fault.status >= 500 else "invalid_request_error",
            None,
            f"Injected error {fault.status}.",
        ),
    )
    headers: dict[str, str] = {}
    wait = "20s"
    if fault.retry_after is not None:
        # The SDK prefers retry-after-ms (exact); retry-after stays an integer per RFC 9110.
        headers["retry-after"] = str(max(0, math.ceil(fault.retry_after)))
        headers["retry-after-ms"] = str(max(0, round(fault.retry_after * 1000)))
        wait = f"{fault.retry_after:g}s"
    message = fault.message or template.format(
        model=model or "gpt-4o-mini", key=_mask(key), wait=wait
    )
    return _APIError(fault.status, message, type_=type_, code=fault.code or code, headers=headers)


@dataclass
class _Fault:
    status: int | None = None
    retry_after: float | None = None
    timeout: bool = False
    message: str | None = None
    code: str | None = None


# --------------------------------------------------------------------------- prompt cache


class _PromptCache:
    """Prefix hashes at every 128-token boundary, per (key, model), expiring like OpenAI's."""

    def __init__(self, ttl: float, max_entries: int = 200_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def lookup_and_store(self, scope: str, tokens: Sequence[str]) -> int:
        """Return cached tokens for this prompt, then remember its prefixes for next time."""
        if len(tokens) < CACHE_MIN_TOKENS:
            return 0
        now = time.monotonic()
        digest = hashlib.blake2b(scope.encode(), digest_size=16)
        boundaries: list[bytes] = []
        for i, token in enumerate(tokens, start=1):
            digest.update(token.encode())
            digest.update(b"\x00")
            if i >= CACHE_MIN_TOKENS and i % CACHE_STEP == 0:
                boundaries.append(digest.copy().digest())
        cached = 0
        for n, key in enumerate(boundaries):
            seen = self._seen.get(key)
            if seen is not None and now - seen <= self.ttl:
                cached = CACHE_MIN_TOKENS + n * CACHE_STEP
        for key in boundaries:
            self._seen[key] = now
            self._seen.move_to_end(key)
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return cached


# --------------------------------------------------------------------------- server


class FakeOpenAIServer:
    """OpenAI-compatible ``/v1/models`` and ``/v1/chat/completions`` on aiohttp.

    ``generator`` writes the replies: anything with ``from_messages(messages) -> str`` or a
    plain callable taking the message list; by default an ``OfflineGenerator(seed)``.
    State a test may read: ``requests`` (every chat request body, newest last, trimmed to
    ``record_limit``), ``stats`` (responses by status code, plus ``"timeout"`` for requests
    made to hang) and ``base_url`` once started.
    """

    def __init__(
        self,
        api_keys: Iterable[str] = ("sk-test",),
        models: Iterable[str] = DEFAULT_MODELS,
        latency: tuple[float, float] = (0.05, 0.5),
        seed: int | None = None,
        generator: Any = None,
        *,
        cache_ttl: float = 600.0,
        max_hang: float = 60.0,
        record_limit: int | None = 10_000,
    ) -> None:
        self.api_keys = set(api_keys)
        self.models = list(models)
        self.latency = latency
        self._rng = random.Random(seed)
        gen = generator if generator is not None else OfflineGenerator(seed)
        self._generate: Generator = getattr(gen, "from_messages", gen)
        self.max_hang = max_hang
        self.record_limit = record_limit
        self.requests: list[dict[str, Any]] = []
        self._stats: Counter[int | str] = Counter()
        self._faults: deque[_Fault] = deque()
        self._failing: _Fault | None = None
        self._cache = _PromptCache(cache_ttl)
        self._created = int(time.time())
        self._closing: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    # ---- control surface for tests

    @property
    def latency(self) -> tuple[float, float]:
        return self._latency

    @latency.setter
    def latency(self, value: tuple[float, float]) -> None:
        low, high = float(value[0]), float(value[1])
        if low < 0 or high < low:
            raise ValueError("latency must be (low, high) with 0 <= low <= high")
        self._latency = (low, high)

    @property
    def stats(self) -> dict[int | str, int]:
        return dict(self._stats)

    def inject(
        self,
        status: int | None = None,
        count: int = 1,
        retry_after: float | None = None,
        *,
        timeout: bool = False,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        """Make the next ``count`` chat completions fail with ``status`` or hang (``timeout``).

        A hang sleeps up to ``max_hang`` seconds (ended early by ``stop()`` or a client
        disconnect), then answers normally, as a slow server would.
        """
        if status is None and not timeout:
            raise ValueError("inject needs a status or timeout=True")
        for _ in range(count):
            self._faults.append(_Fault(status, retry_after, timeout, message, code))

    def set_failing(
        self,
        status: int | None = None,
        *,
        retry_after: float | None = None,
        timeout: bool = False,
        message: str | None = None,
        code: str | None = None,
    ) -> None:
        """Fail (or hang) every authenticated request until ``set_failing(None)``: an outage."""
        if status is None and not timeout:
            self._failing = None
        else:
            self._failing = _Fault(status, retry_after, timeout, message, code)

    def reset(self) -> None:
        """Forget recorded requests, stats, pending faults and the prompt cache."""
        self.requests.clear()
        self._stats.clear()
        self._faults.clear()
        self._failing = None
        self._cache = _PromptCache(self._cache.ttl)

    # ---- lifecycle

    def make_app(self) -> web.Application:
        """The aiohttp application; mount it anywhere or serve it with ``start()``."""
        app = web.Application(middlewares=[self._errors_middleware])
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model_id:.+}", self._get_model)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_route("*", "/{tail:.*}", self._unknown_url)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); return the SDK's ``base_url``."""
        if self._runner is not None:
            raise RuntimeError("server already started")
        self._closing = asyncio.Event()
        # handler_cancellation: a client that gives up (timeout) ends its hanging handler.
        runner = web.AppRunner(
            self.make_app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{shown}:{bound_port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; hanging requests are released first so shutdown is quick."""
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            self.base_url = None
            await runner.cleanup()

    # ---- plumbing

    @web.middleware
    async def _errors_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response = await handler(request)
        except _APIError as exc:
            response = exc.response()
        except web.HTTPException:
            raise
        except Exception:
            log.exception("sandbox LLM server: unexpected error")
            response = _APIError(500, _ERRORS[500][2], type_="server_error").response()
        if not response.prepared:
            response.headers.update(self._common_headers())
        self._stats[response.status] += 1
        return response

    def _common_headers(self) -> dict[str, str]:
        return {
            "x-request-id": f"req_{self._rng.getrandbits(96):024x}",
            "openai-version": "2020-10-01",
        }

    def _authenticate(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
            )
        if key not in self.api_keys:
            raise _APIError(401, _ERRORS[401][2].format(key=_mask(key)), code="invalid_api_key")
        return key

    async def _sleep(self, seconds: float) -> None:
        """Sleep without blocking the loop; ``stop()`` cuts it short."""
        if seconds <= 0:
            return
        if self._closing is None:
            self._closing = asyncio.Event()
        try:
            await wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _apply_fault(self, fault: _Fault | None, model: str, key: str) -> None:
        if fault is None:
            return
        if fault.timeout:
            self._stats["timeout"] += 1
            await self._sleep(self.max_hang)
        if fault.status is not None:
            raise _fault_error(fault, model, key)

    def _model_object(self, model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": self._created, "owned_by": "system"}

    # ---- endpoints

    async def _unknown_url(self, request: web.Request) -> web.Response:
        raise _APIError(404, f"Invalid URL ({request.method} {request.path})")

    async def _list_models(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        await self._apply_fault(self._failing, "", key)
        return web.json_response(
            {"object": "list", "data": [self._model_object(m) for m in self.models]}
        )

    async def _get_model(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        await self._apply_fault(self._failing, "", key)
        model_id = request.match_info["model_id"]
        if model_id not in self.models:
            raise _APIError(
                404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            )
        return web.json_response(self._model_object(model_id))

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        self._record(body if isinstance(body, dict) else {"_raw": raw.decode("utf-8", "replace")})
        key = self._authenticate(request)
        model = str(body.get("model", "")) if isinstance(body, dict) else ""
        fault = self._failing or (self._faults.popleft() if self._faults else None)
        await self._apply_fault(fault, model, key)
        if not isinstance(body, dict):
            raise _APIError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)",
            )
        params = _validate_chat(body)
        if model not in self.models:
            raise _APIError(404, _ERRORS[404][2].format(model=model), code="model_not_found")

        low, high = self.latency
        await self._sleep(self._rng.uniform(low, high) if high > 0 else 0.0)

        messages = body["messages"]
        prompt = prompt_tokens(messages)
        cached = self._cache.lookup_and_store(f"{key}\x00{model}", prompt)
        choices = []
        completion_total = 0
        for index in range(params["n"]):
            text, finish, used = self._reply(messages, params["max_tokens"])
            completion_total += used
            choices.append((index, text, finish))
        usage = {
            "prompt_tokens": len(prompt),
            "completion_tokens": completion_total,
            "total_tokens": len(prompt) + completion_total,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        base = {
            "id": f"chatcmpl-{self._rng.getrandbits(128):032x}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_sandbox",
            "service_tier": "default",
        }
        if params["stream"]:
            return await self._stream(request, base, choices, usage, params["include_usage"])
        return web.json_response(
            {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": index,
                        "message": {
                            "role": "assistant",
                            "content": text,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                    for index, text, finish in choices
                ],
                "usage": usage,
            }
        )

    def _reply(self, messages: list[dict[str, Any]], cap: int | None) -> tuple[str, str, int]:
        text = self._generate(messages) or "…"
        tokens = tokenize(text)
        if cap is not None and len(tokens) > cap:
            return "".join(tokens[:cap]).lstrip(), "length", cap
        return text, "stop", len(tokens)

    async def _stream(
        self,
        request: web.Request,
        base: dict[str, Any],
        choices: list[tuple[int, str, str]],
        usage: dict[str, Any],
        include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        response.headers.update(self._common_headers())
        await response.prepare(request)
        extra = {"usage": None} if include_usage else {}

        async def send(choice_list: list[dict[str, Any]], **fields: Any) -> None:
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": choice_list,
                **extra,
                **fields,
            }
            await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())

        def delta(index: int, payload: dict[str, Any], finish: str | None = None) -> dict:
            return {"index": index, "delta": payload, "logprobs": None, "finish_reason": finish}

        try:
            for index, text, finish in choices:
                await send([delta(index, {"role": "assistant", "content": "", "refusal": None})])
                pieces = tokenize(text)
                for start in range(0, len(pieces), 4):
                    await send([delta(index, {"content": "".join(pieces[start : start + 4])})])
                await send([delta(index, {}, finish)])
            if include_usage:
                await send([], usage=usage)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client hung up mid-stream, as real clients do; nothing to clean up
        return response

    def _record(self, body: dict[str, Any]) -> None:
        self.requests.append(body)
        limit = self.record_limit
        if limit is not None and len(self.requests) > limit + max(1, limit // 10):
            del self.requests[: len(self.requests) - limit]


def _validate_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Reject what api.openai.com rejects, with its wording; return the parsed options."""
    if not body.get("model"):
        raise _APIError(400, "you must provide a model parameter")
    if "messages" not in body:
        raise _APIError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        raise _APIError(
            400,
            "Invalid type for 'messages': expected an array, but got "
            f"{type(messages).__name__} instead.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        raise _APIError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum "
            "length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _APIError(
                400,
                f"Invalid type for 'messages[{i}]': expected an object.",
                param=f"messages[{i}]",
                code="invalid_type",
            )
        role = message.get("role")
        if role is None:
            raise _APIError(
                400,
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="missing_required_parameter",
            )
        if role not in _VALID_ROLES:
            raise _APIError(
                400,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', "
                "'function', 'tool', and 'developer'.",
                param=f"messages[{i}].role",
                code="invalid_value",
            )
        content = message.get("content")
        may_be_null = role == "assistant" and (
            message.get("tool_calls") or message.get("function_call")
        )
        if content is None and not may_be_null:
            raise _APIError(
                400,
                f"Missing required parameter: 'messages[{i}].content'.",
                param=f"messages[{i}].content",
                code="missing_required_parameter",
            )
        if content is not None and not isinstance(content, (str, list)):
            raise _APIError(
                400,
                f"Invalid type for 'messages[{i}].content': expected one of "
                "a string or array of objects.",
                param=f"messages[{i}].content",
                code="invalid_type",
            )

    cap: int | None = None
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise _APIError(
                400,
                f"Invalid type for '{name}': expected an integer.",
                param=name,
                code="invalid_type",
            )
        if value < 1:
            raise _APIError(
                400,
                f"Invalid '{name}': integer below minimum value. Expected a "
                f"value >= 1, but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        cap = value if cap is None else min(cap, value)

    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise _APIError(
            400,
            f"Invalid 'n': expected an integer between 1 and 128, got {n}.",
            param="n",
            code="invalid_value",
        )
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _APIError(
            400,
            "Invalid type for 'stream': expected a boolean.",
            param="stream",
            code="invalid_type",
        )
    options = body.get("stream_options")
    if options is not None and not stream:
        raise _APIError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return {"max_tokens": cap, "n": n, "stream": stream, "include_usage": include_usage}
