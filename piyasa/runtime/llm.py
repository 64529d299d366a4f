"""Message generation: prompt building, the OpenAI-compatible client, prices, error classes.

Every call is async (the event loop never waits on the network), records latency,
prompt/completion/cached tokens, the model and the cost at the configured price table, and
reports failures in five classes (auth, quota, server, timeout, bad_request) so the
provider breaker and the operators can tell a wrong key from an overloaded endpoint.
With no API key configured the offline generator runs in-process: no HTTP, tokens
estimated, cost 0.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from piyasa.runtime.breaker import CircuitBreaker
from piyasa.runtime.llm_watch import LLMOutcomes

# USD per million tokens: input, cached input, output (OpenAI list prices).
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15, "cached": 0.075, "output": 0.60},
    "gpt-4o": {"input": 2.50, "cached": 1.25, "output": 10.00},
    "gpt-4.1": {"input": 2.00, "cached": 0.50, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "cached": 0.10, "output": 1.60},
    "gpt-4.1-nano": {"input": 0.10, "cached": 0.025, "output": 0.40},
    "gpt-5": {"input": 1.25, "cached": 0.125, "output": 10.00},
    "gpt-5-mini": {"input": 0.25, "cached": 0.025, "output": 2.00},
    "gpt-5-nano": {"input": 0.05, "cached": 0.005, "output": 0.40},
    "offline": {"input": 0.0, "cached": 0.0, "output": 0.0},
}
ERROR_KINDS = ("auth", "quota", "server", "timeout", "bad_request", "connection")
MAX_TEXT = 4096


class LLMError(Exception):
    """A failed generation, classified; ``retry_after`` when the provider said when."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


class ProviderUnavailable(LLMError):
    """The provider's breaker is open: no call was made."""


@dataclass
class Prompt:
    messages: list[dict[str, str]]
    topic: str
    language: str
    persona: dict[str, Any]
    reply_to: str | None = None
    temperature: float = 0.9  # the fleet's ``llm_temperature`` setting (OpenAI: 0–2)


@dataclass
class Generation:
    text: str
    model: str
    latency_ms: int
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    cost_usd: Decimal


def price_of(
    model: str, tokens_in: int, tokens_cached: int, tokens_out: int, prices: Mapping[str, Any]
) -> Decimal:
    """Cost in USD; cached tokens are a subset of prompt tokens billed at the cached rate.

    An unknown model is matched by the longest known prefix (``gpt-4o-mini-2024-07-18``
    -> ``gpt-4o-mini``); with no match the cost is 0 and the model shows in analytics.
    """
    table = {**DEFAULT_PRICES, **(prices or {})}
    entry = table.get(model)
    if entry is None:
        best = max((k for k in table if model.startswith(k)), key=len, default=None)
        entry = table.get(best) if best else None
    if not entry:
        return Decimal(0)
    cached = min(tokens_cached, tokens_in)
    usd = (
        (tokens_in - cached) * Decimal(str(entry.get("input", 0)))
        + cached * Decimal(str(entry.get("cached", entry.get("input", 0))))
        + tokens_out * Decimal(str(entry.get("output", 0)))
    ) / Decimal(1_000_000)
    return usd.quantize(Decimal("0.000001"))


_LANG_NAMES = {"tr": "Turkish (Türkçe)", "en": "English"}


def build_prompt(
    persona: Mapping[str, Any],
    topic: str,
    history: Sequence[tuple[str, str]],
    language: str | None = None,
    reply_to: tuple[str, str] | None = None,
    display_name: str | None = None,
) -> Prompt:
    """System prompt from persona + topic + stances; history and the reply target as user text.

    ``history`` is (speaker, text) oldest first; ``reply_to`` is (speaker, text).
    """
    name = str(persona.get("name") or display_name or "Piyasa bot")
    lang = str(language or persona.get("language") or "tr")
    style = str(persona.get("style") or "")
    stances = persona.get("stances") or {}
    lines = [
        f"Name: {name}. You are {name}, an automated Telegram bot account in a market chat "
        "group. You are a bot, not a human: never claim or imply to be human; if asked, say "
        "you are a bot.",
        f"Topic: {topic}. Talk about {topic} only.",
        f"Language: {lang}. Write in {_LANG_NAMES.get(lang, lang)}.",
    ]
    if style:
        lines.append(f"Style: {style}.")
    if isinstance(stances, Mapping) and stances:
        lines.append("Stances: " + "; ".join(f"{k}: {v}" for k, v in stances.items()) + ".")
    elif isinstance(stances, str) and stances:
        lines.append(f"Stances: {stances}.")
    if persona.get("bio"):
        lines.append(f"About you: {persona['bio']}")
    # fields an operator edits in /bots (piyasa.fleetadmin.persona)
    for key, label in (("tone", "Tone"), ("risk", "Risk attitude"), ("expertise", "Expertise")):
        if persona.get(key):
            lines.append(f"{label}: {persona[key]}.")
    phrases = persona.get("phrases") or []
    if isinstance(phrases, list) and phrases:
        lines.append("Signature phrases (use one now and then): " + "; ".join(map(str, phrases)))
    lines.append(
        "Write one short group-chat message (1-3 sentences, under 400 characters). "
        "No buy/sell recommendations, no price targets presented as advice."
    )
    messages = [{"role": "system", "content": "\n".join(lines)}]
    if history:
        convo = "\n".join(f"{who}: {text}" for who, text in history)
        messages.append({"role": "user", "content": f"Recent messages in the group:\n{convo}"})
    if reply_to:
        messages.append({"role": "user", "content": f"Reply to {reply_to[0]}: {reply_to[1]}"})
    else:
        messages.append({"role": "user", "content": f"Write your next message about {topic}."})
    return Prompt(
        messages=messages,
        topic=topic,
        language=lang,
        persona=dict(persona),
        reply_to=reply_to[1] if reply_to else None,
    )


_HUMAN_CLAIM = re.compile(
    r"[^.!?\n]*\b(?:i am (?:a )?(?:real )?(?:human|person)|i'm (?:a )?(?:real )?(?:human|person)|"
    r"ben (?:bir )?insan(?:ım|im)|gerçek (?:bir )?insan(?:ım|im)|bot değilim|not a bot)\b[^.!?\n]*[.!?]?",
    re.IGNORECASE,
)


def finish_text(
    text: str, persona: Mapping[str, Any], footer_enabled: bool = True, fleet_footer: str = ""
) -> str:
    """Strip any claim to be human, add the footer once, respect Telegram's limit.

    The footer is the persona's own, else the fleet's (``fleet_footer`` setting)."""
    text = _HUMAN_CLAIM.sub("", text or "").strip() or "…"
    footer = str(persona.get("footer") or fleet_footer or "").strip() if footer_enabled else ""
    if footer and footer.lower() not in text.lower():
        text = f"{text}\n\n({footer})"
    return text[:MAX_TEXT]


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, prompt: Prompt) -> tuple[str, int, int, int, str]: ...
    async def close(self) -> None: ...


def classify_openai_error(exc: BaseException) -> LLMError:
    import openai

    if isinstance(exc, LLMError):
        return exc
    retry_after = None
    response = getattr(exc, "response", None)
    if response is not None:
        raw = response.headers.get("retry-after")
        try:
            retry_after = float(raw) if raw else None
        except ValueError:
            retry_after = None
    msg = f"{type(exc).__name__}: {str(exc)[:200]}"
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", msg)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("connection", msg)
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return LLMError("auth", msg)
    if isinstance(exc, openai.RateLimitError):
        return LLMError("quota", msg, retry_after)
    if isinstance(exc, openai.InternalServerError):
        return LLMError("server", msg, retry_after)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in (408,):
            return LLMError("timeout", msg)
        if exc.status_code >= 500:
            return LLMError("server", msg, retry_after)
        return LLMError("bad_request", msg)
    return LLMError("server", msg)


class OpenAIProvider:
    """Any OpenAI-compatible endpoint through the real async SDK; retries are ours."""

    def __init__(
        self, api_key: str, base_url: str | None, model: str, timeout: float = 30.0
    ) -> None:
        from openai import AsyncOpenAI

        self.name = base_url or "openai"
        self.model = model
        self.client = AsyncOpenAI(
            api_key=api_key, base_url=base_url or None, max_retries=0, timeout=timeout
        )

    async def complete(self, prompt: Prompt) -> tuple[str, int, int, int, str]:
        try:
            resp = await self.client.chat.completions.create(
                model=self.model,
                messages=prompt.messages,
                max_tokens=300,
                temperature=prompt.temperature,  # type: ignore[arg-type]
            )
        except Exception as exc:
            raise classify_openai_error(exc) from None
        text = (resp.choices[0].message.content or "").strip() if resp.choices else ""
        usage = resp.usage
        tin = usage.prompt_tokens if usage else 0
        tout = usage.completion_tokens if usage else 0
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        return text, tin, tout, cached, resp.model or self.model

    async def probe(self, prompt: Prompt) -> None:
        """A one-token completion: is the endpoint answering this key and model?"""
        try:
            await self.client.chat.completions.create(
                model=self.model,
                messages=prompt.messages,  # type: ignore[arg-type]
                max_tokens=1,
            )
        except Exception as exc:
            raise classify_openai_error(exc) from None

    async def close(self) -> None:
        await self.client.close()


class OfflineProvider:
    """The sandbox chatter generator, in-process; tokens estimated, cost 0."""

    name = "offline"
    model = "offline"

    def __init__(self, seed: int | None = None) -> None:
        from piyasa.sandbox.chatter import OfflineGenerator

        self.gen = OfflineGenerator(seed)

    async def complete(self, prompt: Prompt) -> tuple[str, int, int, int, str]:
        from piyasa.sandbox.llm_server import count_tokens, prompt_tokens

        history = [m["content"] for m in prompt.messages[1:-1]]
        text = self.gen.generate(
            prompt.persona, prompt.topic, history, prompt.language, prompt.reply_to
        )
        return text, len(prompt_tokens(prompt.messages)), count_tokens(text), 0, self.model

    async def close(self) -> None:
        return None


@dataclass
class Generator:
    """Provider + breaker + price table: the one entry point the workers call.

    ``outcomes`` records every real call (see ``piyasa.runtime.llm_watch``): what the LLM
    health reads, rather than the breaker's state.
    """

    provider: Any
    breaker: CircuitBreaker = field(default_factory=lambda: CircuitBreaker("llm", 5, 5.0))
    prices: Mapping[str, Any] = field(default_factory=dict)
    outcomes: LLMOutcomes = field(default_factory=LLMOutcomes)
    #: generations sent to the provider and not yet answered (the breaker may open meanwhile)
    in_flight: int = 0

    async def generate(self, prompt: Prompt) -> Generation:
        if not self.breaker.allow():
            raise ProviderUnavailable(
                "server", f"LLM provider {self.provider.name} paused by its circuit breaker"
            )
        start = time.perf_counter()
        self.in_flight += 1
        try:
            text, tin, tout, cached, model = await self.provider.complete(prompt)
        except LLMError as exc:
            self.outcomes.failure("generation", exc.kind, str(exc))
            if exc.kind in ("quota",) and exc.retry_after:
                self.breaker.trip(exc.retry_after, str(exc))
            elif exc.kind == "auth":
                self.breaker.trip(60.0, str(exc))
            elif exc.kind != "bad_request":
                self.breaker.failure(str(exc))
            raise
        finally:
            self.in_flight -= 1
        self.breaker.success()
        self.outcomes.success("generation")
        latency_ms = int((time.perf_counter() - start) * 1000)
        return Generation(
            text=text,
            model=model,
            latency_ms=latency_ms,
            tokens_in=tin,
            tokens_out=tout,
            tokens_cached=cached,
            cost_usd=price_of(model, tin, cached, tout, self.prices),
        )

    async def close(self) -> None:
        await self.provider.close()
