"""Talk to what the operator configures, and say in one word what went wrong.

Every function returns a :class:`Outcome` and never raises for a bad dependency; ``problem``
is a short code the surfaces turn into a sentence with the next step, in the user's
language (``setup.problem.<code>``). Nothing here logs or returns a token, key or password.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from piyasa.config import (
    TELEGRAM_TOKEN_RE,
    ConfigError,
    Settings,
    _db_url,
    _redis_url,
    mask_url,
)
from piyasa.tasks import wait_for

DEFAULT_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class Outcome:
    ok: bool
    problem: str = ""  # bad_format | unauthorized | unreachable | timeout | not_found | ...
    detail: str = ""  # short and secret-free (error class, status code, host:port)
    data: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


# --- Telegram ----------------------------------------------------------------------------


def _bot(api_url: str, token: str) -> Any:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer

    return Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_url)))


def _telegram_problem(exc: BaseException) -> tuple[str, str]:
    from aiogram.exceptions import (
        TelegramBadRequest,
        TelegramForbiddenError,
        TelegramNetworkError,
        TelegramNotFound,
        TelegramRetryAfter,
        TelegramUnauthorizedError,
    )

    if isinstance(exc, TelegramUnauthorizedError):
        return "unauthorized", "401 Unauthorized"
    if isinstance(exc, TelegramForbiddenError):
        return "forbidden", "403 Forbidden"
    if isinstance(exc, TelegramNotFound):
        return "not_found", "404 Not Found"
    if isinstance(exc, TelegramBadRequest):
        text = str(exc).lower()
        return ("chat_not_found" if "chat not found" in text else "bad_request"), "400"
    if isinstance(exc, TelegramRetryAfter):
        return "rate_limited", f"429 retry after {exc.retry_after}s"
    if isinstance(exc, TelegramNetworkError | OSError | asyncio.TimeoutError):
        return "unreachable", type(exc).__name__
    return "error", type(exc).__name__


async def telegram_get_me(
    api_url: str, token: str, deadline_s: float = DEFAULT_TIMEOUT_S
) -> Outcome:
    """getMe: ``data`` has id, username, first_name on success."""
    token = (token or "").strip()
    if not TELEGRAM_TOKEN_RE.match(token):
        return Outcome(False, "bad_format")
    bot = _bot(api_url, token)
    start = time.perf_counter()
    try:
        me = await wait_for(bot.get_me(), deadline_s)
    except Exception as exc:
        problem, detail = _telegram_problem(exc)
        return Outcome(False, problem, detail)
    finally:
        await bot.session.close()
    return Outcome(
        True,
        data={"id": me.id, "username": me.username or "", "first_name": me.first_name or ""},
        latency_ms=_ms(start),
    )


async def telegram_get_chat(
    api_url: str, token: str, chat_id: int, deadline_s: float = DEFAULT_TIMEOUT_S
) -> Outcome:
    """getChat with a bot that should be in the chat: ``data`` has id, title, type."""
    bot = _bot(api_url, token)
    try:
        chat = await wait_for(bot.get_chat(chat_id), deadline_s)
    except Exception as exc:
        problem, detail = _telegram_problem(exc)
        return Outcome(False, problem, detail)
    finally:
        await bot.session.close()
    title = chat.title or chat.full_name or str(chat.id)
    return Outcome(True, data={"id": chat.id, "title": title, "type": str(chat.type)})


# --- LLM -------------------------------------------------------------------------------


OPENAI_API_BASE = "https://api.openai.com/v1"


def llm_base_url(chosen: str | None, settings: Settings | None = None) -> str:
    """The endpoint to test an LLM key against: the one the fleet will send it to.

    ``chosen`` is the base URL picked for this key (the wizard's "other provider", or the
    settings table's ``llm_base_url``); empty means the configured ``OPENAI_BASE_URL``
    (environment or ``DATA_DIR/.env``, as read into ``settings``), else OpenAI's own API —
    the order the fleet resolves it in. A key never goes to api.openai.com because a
    provider was configured somewhere the openai SDK does not look.
    """
    configured = settings.openai_base_url if settings is not None else ""
    return (chosen or "").strip() or (configured or "").strip() or OPENAI_API_BASE


async def llm_models(
    api_key: str, base_url: str | None = None, deadline_s: float = DEFAULT_TIMEOUT_S
) -> Outcome:
    """A real ``models.list()`` at ``base_url``: ``data["models"]`` is the sorted list of
    model ids. Resolve ``base_url`` with :func:`llm_base_url`; empty means OpenAI's API,
    never a value the openai SDK would read from this process's environment on its own."""
    import openai

    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url or OPENAI_API_BASE, max_retries=0, timeout=deadline_s
    )
    start = time.perf_counter()
    try:
        page = await client.models.list()
        ids = sorted({m.id async for m in page})
    except openai.AuthenticationError:
        return Outcome(False, "unauthorized", "401")
    except openai.PermissionDeniedError:
        return Outcome(False, "forbidden", "403")
    except openai.NotFoundError:
        return Outcome(False, "not_found", "404")
    except openai.RateLimitError:
        return Outcome(False, "rate_limited", "429")
    except openai.APITimeoutError:
        return Outcome(False, "timeout", f"no answer within {deadline_s:.0f}s")
    except openai.APIConnectionError:
        return Outcome(False, "unreachable", "connection failed")
    except openai.APIStatusError as exc:
        return Outcome(False, "error", f"HTTP {exc.status_code}")
    except Exception as exc:  # malformed answers from odd providers
        return Outcome(False, "error", type(exc).__name__)
    finally:
        await client.close()
    return Outcome(True, data={"models": ids}, latency_ms=_ms(start))


CHAT_MODEL_HINTS = ("gpt", "o1", "o3", "o4", "claude", "llama", "mistral", "qwen", "gemini")


def chat_models_first(ids: list[str]) -> list[str]:
    """Likely chat models first (embeddings, audio and image models last)."""
    skip = ("embed", "whisper", "tts", "dall-e", "moderation", "image", "audio")
    good = [m for m in ids if not any(s in m.lower() for s in skip)]
    return good + [m for m in ids if m not in good]


# --- databases and Redis ------------------------------------------------------------------


def normalize_database_url(raw: str) -> str:
    """A URL, or ``host=.. port=.. db=.. user=.. password=..`` (any order), as an async URL.

    Raises :class:`ConfigError` with the example to follow.
    """
    text = (raw or "").strip()
    if "://" not in text and "=" in text:
        parts = dict(p.split("=", 1) for p in text.split() if "=" in p)
        from sqlalchemy import URL

        url = URL.create(
            "postgresql+asyncpg",
            username=parts.get("user") or parts.get("username") or None,
            password=parts.get("password") or None,
            host=parts.get("host") or "127.0.0.1",
            port=int(parts.get("port") or 5432),
            database=parts.get("db") or parts.get("dbname") or parts.get("database") or None,
        )
        return url.render_as_string(hide_password=False)
    return _db_url("PIYASA_DATABASE_URL", text)


def _db_problem(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    text = str(exc).lower()
    if isinstance(exc, asyncio.TimeoutError) or "timeout" in name.lower():
        return "timeout", name
    if "password" in text or "authentication" in text or "InvalidPassword" in name:
        return "auth", name
    if "does not exist" in text and "database" in text:
        return "no_database", name
    if isinstance(exc, ConnectionRefusedError | OSError) or "connect" in text:
        return "unreachable", name
    orig = getattr(exc, "orig", None) or getattr(exc, "__cause__", None)
    if orig is not None and orig is not exc:
        return _db_problem(orig)
    return "error", name


async def database_test(url: str, deadline_s: float = DEFAULT_TIMEOUT_S) -> Outcome:
    """Connect and report the kind, server version and schema revision (or what failed)."""
    from sqlalchemy import text

    from piyasa.db import migrate
    from piyasa.db.engine import create_engine

    try:
        url = normalize_database_url(url)
    except (ConfigError, ValueError) as exc:
        return Outcome(False, "bad_format", str(exc)[:200])
    engine = create_engine(url, pool_size=1)
    start = time.perf_counter()
    try:

        async def probe() -> dict[str, Any]:
            async with engine.connect() as conn:
                version = await conn.scalar(text("SELECT version()")) if "postgresql" in url else ""
            revision = await migrate.current_revision(engine)
            return {"version": str(version or "sqlite")[:60], "revision": revision or ""}

        data = await wait_for(probe(), deadline_s)
    except Exception as exc:
        problem, detail = _db_problem(exc)
        return Outcome(False, problem, f"{detail} at {_where(url)}")
    finally:
        await engine.dispose()
    data.update(kind="sqlite" if url.startswith("sqlite") else "postgresql", where=_where(url))
    return Outcome(True, data=data, latency_ms=_ms(start))


def _where(url: str) -> str:
    """host:port/db (or the SQLite file name) without credentials."""
    from sqlalchemy import make_url

    try:
        u = make_url(url)
    except Exception:
        return mask_url(url)
    if u.drivername.startswith("sqlite"):
        return str(u.database or ":memory:")
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


async def redis_test(url: str, deadline_s: float = 3.0) -> Outcome:
    import redis.asyncio as aioredis

    try:
        url = _redis_url("PIYASA_REDIS_URL", url)
    except ConfigError as exc:
        return Outcome(False, "bad_format", str(exc)[:200])
    client = aioredis.from_url(url, socket_connect_timeout=deadline_s, socket_timeout=deadline_s)
    start = time.perf_counter()
    try:
        await wait_for(client.ping(), deadline_s + 0.5)
        info = await client.info("server")
    except Exception as exc:
        name = type(exc).__name__
        text = str(exc).lower()
        problem = "auth" if "auth" in text or "password" in text else "unreachable"
        if isinstance(exc, asyncio.TimeoutError) or "timeout" in name.lower():
            problem = "timeout"
        return Outcome(False, problem, name)
    finally:
        await client.aclose()
    return Outcome(True, data={"version": info.get("redis_version", "")}, latency_ms=_ms(start))
