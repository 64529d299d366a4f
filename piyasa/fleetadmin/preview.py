"""Preview: sample messages of a bot, generated as the fleet would, and sent nowhere.

The prompt and the finishing (footer, no claim to be human) are the fleet's own
(``piyasa.runtime.llm.build_prompt`` / ``finish_text``), the generator is the running
fleet's (its provider, model, prices and breaker) or, without a fleet in this process,
one built from the same settings. The chat's recent history, when the fleet holds it,
goes into the prompt as it would for a real message. The persona is the saved one, or a
proposed one not yet saved (validated by ``piyasa.fleetadmin.persona`` when installed).

Costs: every sample is a ``preview_costs`` row (:mod:`piyasa.db.preview_models`), never a
``messages`` row and never in the fleet's Prometheus counters, so analytics and fleet
figures stay about fleet traffic only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from piyasa.db.models import Bot, Chat
from piyasa.db.preview_models import PreviewCost
from piyasa.runtime.llm import Generator, LLMError, build_prompt, finish_text
from piyasa.runtime.planner import DEFAULT_TOPICS

MAX_SAMPLES = 5
TOPIC_MAX = 32


class PreviewError(Exception):
    """Refused input or a failed generation: ``key`` is a catalogue key, ``params`` its
    placeholders."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class PreviewSample:
    text: str  # as it would be posted (footer included)
    topic: str
    bot_id: int
    bot_name: str
    chat_id: int | None  # Telegram chat id of the chat it was written for
    chat_title: str | None
    model: str
    latency_ms: int
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    cost_usd: Decimal
    proposed: bool


async def find_bot(services: Any, ref: str | int) -> Bot:
    """A bot by database id, Telegram id or @username; PreviewError when none matches."""
    text = str(ref).strip().lstrip("@")
    async with services.sessions() as session:
        if text.lstrip("-").isdigit():
            n = int(text)
            row = await session.get(Bot, n) if abs(n) < 2**31 else None
            row = row or await session.scalar(select(Bot).where(Bot.telegram_id == n))
        else:
            row = await session.scalar(select(Bot).where(Bot.username.ilike(text)))
    if row is None:
        raise PreviewError("preview.error.no_bot", bot=str(ref))
    return row


async def find_chat(services: Any, ref: str | int) -> Chat:
    """A fleet chat by database id, Telegram id or exact title; PreviewError otherwise."""
    text = str(ref).strip()
    async with services.sessions() as session:
        row = None
        if text.lstrip("-").isdigit():
            n = int(text)
            row = await session.scalar(select(Chat).where(Chat.telegram_id == n))
            if row is None and 0 < n < 2**31:
                row = await session.get(Chat, n)
        else:
            row = await session.scalar(select(Chat).where(Chat.title == text))
    if row is None:
        raise PreviewError("preview.error.no_chat", chat=text)
    return row


def _check_persona(persona: dict[str, Any]) -> dict[str, Any]:
    """Validate a proposed persona with fbots' rules when installed."""
    try:
        from piyasa.fleetadmin import persona as personas  # fbots' validator
    except ImportError:
        return dict(persona)
    validate = getattr(personas, "validate_persona", None)
    if validate is None:
        return dict(persona)
    try:
        return dict(validate(persona))
    except getattr(personas, "PersonaError", ValueError) as exc:
        raise PreviewError(
            getattr(exc, "catalog_key", "preview.error.persona"),
            **(getattr(exc, "params", None) or {}),
        ) from exc


def _generator(services: Any) -> tuple[Generator, bool]:
    """The running fleet's generator, or a fresh one from the same settings (to close)."""
    fleet = services.extras.get("fleet")
    if fleet is not None and getattr(fleet, "generator", None) is not None:
        return fleet.generator, False
    from piyasa.runtime.llm import OfflineProvider, OpenAIProvider

    cfg = services.settings
    key = cfg.openai_api_key.reveal()
    provider: Any = (
        OpenAIProvider(key, cfg.openai_base_url or None, cfg.llm_model, 30.0)
        if key
        else OfflineProvider()
    )
    return Generator(provider), True


async def preview(
    services: Any,
    bot_id: int,
    *,
    chat_id: int | None = None,
    topic: str | None = None,
    n: int = 3,
    persona: dict[str, Any] | None = None,
    actor: str = "preview",
) -> list[PreviewSample]:
    """``n`` (1-5) samples of bot ``bot_id`` (database id) for chat ``chat_id`` (database
    id, optional) about ``topic`` (default: the chat's topics the persona covers).

    ``persona`` None uses the saved persona; a dict previews it unsaved. Nothing is sent;
    each sample's cost is a ``preview_costs`` row by ``actor``. Raises PreviewError
    (``preview.error.*``) for a bad count, topic, bot or chat, or a failed generation.
    """
    if not 1 <= n <= MAX_SAMPLES:
        raise PreviewError("preview.error.count", max=MAX_SAMPLES)
    async with services.sessions() as session:
        bot = await session.get(Bot, bot_id)
        chat = await session.get(Chat, chat_id) if chat_id is not None else None
    if bot is None:
        raise PreviewError("preview.error.no_bot", bot=str(bot_id))
    if chat_id is not None and chat is None:
        raise PreviewError("preview.error.no_chat", chat=str(chat_id))
    proposed = persona is not None
    used = _check_persona(persona) if persona is not None else dict(bot.persona or {})
    if topic is not None:
        topic = topic.strip().lower()
        if not topic or len(topic) > TOPIC_MAX:
            raise PreviewError("preview.error.topic", max=TOPIC_MAX)
    else:
        chat_topics = [t for t in (chat.topics if chat else []) or [] if t]
        mine = [t for t in used.get("topics") or [] if t]
        topic = ([t for t in chat_topics if t in mine] or chat_topics or mine or DEFAULT_TOPICS)[0]
    fleet = services.extras.get("fleet")
    history = list(fleet.history.get(chat.id, ())) if fleet is not None and chat else []
    footer = bool(fleet.settings_store.get("footer_enabled")) if fleet is not None else True
    gen, owned = _generator(services)
    samples: list[PreviewSample] = []
    try:
        for _ in range(n):
            prompt = build_prompt(
                used, topic, history, used.get("language"), None, bot.display_name
            )
            try:
                out = await gen.generate(prompt)
            except LLMError as exc:
                raise PreviewError("preview.error.llm", kind=exc.kind) from exc
            samples.append(
                PreviewSample(
                    text=finish_text(out.text, used, footer),
                    topic=topic,
                    bot_id=bot.id,
                    bot_name=str(used.get("name") or bot.display_name or bot.username or bot.id),
                    chat_id=chat.telegram_id if chat else None,
                    chat_title=chat.title if chat else None,
                    model=out.model,
                    latency_ms=out.latency_ms,
                    tokens_in=out.tokens_in,
                    tokens_out=out.tokens_out,
                    tokens_cached=out.tokens_cached,
                    cost_usd=out.cost_usd,
                    proposed=proposed,
                )
            )
            history = [*history, (f"{used.get('name') or bot.display_name} (bot)", out.text)]
    finally:
        if samples:
            await _record(services, samples, actor, chat.id if chat else None)
        if owned:
            await gen.close()
    return samples


async def _record(
    services: Any, samples: list[PreviewSample], actor: str, chat_db_id: int | None
) -> None:
    async with services.sessions() as session, session.begin():
        session.add_all(
            PreviewCost(
                actor=actor[:128],
                bot_id=s.bot_id,
                chat_id=chat_db_id,
                proposed=s.proposed,
                topic=s.topic,
                model=s.model[:64],
                latency_ms=s.latency_ms,
                tokens_in=s.tokens_in,
                tokens_out=s.tokens_out,
                tokens_cached=s.tokens_cached,
                cost_usd=s.cost_usd,
            )
            for s in samples
        )


async def spent(services: Any) -> tuple[int, Decimal]:
    """Preview samples so far and what they cost (USD)."""
    from sqlalchemy import func

    async with services.sessions() as session:
        n, total = (
            await session.execute(
                select(func.count(PreviewCost.id), func.coalesce(func.sum(PreviewCost.cost_usd), 0))
            )
        ).one()
    return int(n), Decimal(str(total))


def sandbox_running(services: Any) -> bool:
    """True when the demo Telegram sandbox runs in this process (and the fleet with it)."""
    fleet = services.extras.get("fleet")
    return (
        services.extras.get("sandbox") is not None and getattr(fleet, "clients", None) is not None
    )


async def send_to_sandbox(
    services: Any, bot_id: int, chat_id: int | None, text: str
) -> tuple[int, int]:
    """Post ``text`` as bot ``bot_id`` into sandbox group ``chat_id`` (Telegram id; None:
    the first chat the bot is in), so it can be seen as it would appear. Only with the
    sandbox running (PreviewError ``preview.error.no_sandbox`` otherwise); the message
    is a preview, not fleet traffic: it skips the outbox and the fleet's counters.
    Returns (Telegram chat id, message id)."""
    if not sandbox_running(services):
        raise PreviewError("preview.error.no_sandbox")
    fleet = services.extras["fleet"]
    roster = fleet.roster
    if chat_id is None:
        chat_id = next(
            (
                c.telegram_id
                for c in roster.chats.values()
                if bot_id in roster.members.get(c.id, ())
            ),
            None,
        )
    if chat_id is None or not fleet.clients.has(bot_id):
        raise PreviewError("preview.error.no_sandbox_chat")
    try:
        msg = await fleet.clients.sender(bot_id).send_message(chat_id=chat_id, text=text[:4096])
    except Exception as exc:  # a refusal of the sandbox: say which, send nothing else
        raise PreviewError("preview.error.send", error=type(exc).__name__) from exc
    return chat_id, msg.message_id
