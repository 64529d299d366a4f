"""Users: /users first page, a search and a user card with 10,000 users, through the whole
chat-ops pipeline (identify -> ... -> execute -> audit row) plus the Telegram rendering of the
answer (HTML, one server-side token per button), i.e. everything but the network.

Baseline in the same run: /whoami through the same path. Figures: p50/p95 ms of each, and
whether every p95 is under the 50 ms target.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from piyasa.bench._common import pct, throwaway_services

DESCRIPTION = "/users first page, search and user card with 10,000 users (pipeline + render)"
TARGET_P95_MS = 50.0
ADMIN_TG_ID = 930001


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--users", type=int, default=10_000, help="users in the database")
    p.add_argument("--runs", type=int, default=300, help="timed requests per case")
    p.add_argument("--warmup", type=int, default=30, help="untimed requests first")
    p.add_argument("--database-url", default="", help="default: a fresh SQLite file")


class _RenderOnly:
    """A responder that renders for Telegram (tokens included) and sends nothing."""

    def __init__(self, tokens: Any) -> None:
        self.tokens = tokens

    async def _render(self, view: Any) -> None:
        from chatops.telegram import render

        issue = self.tokens.issuer(surface="telegram", user="1", chat="1")
        await render.render(view, "en", issue)

    async def show(self, view: Any, *, edit: bool = False) -> None:
        await self._render(view)

    send = edit = send_private = show


async def _seed(services: Any, n: int) -> int:
    from sqlalchemy import insert

    from piyasa.admin.users import add_user
    from piyasa.db.models import User

    admin = await add_user(services, "bench_admin", "admin", telegram_id=ADMIN_TG_ID)
    now = datetime.now(UTC)
    roles = ("viewer", "operator", "admin")
    rows = [
        {
            "username": f"user{i:05d}",
            "role": roles[i % 3],
            "locked": i % 17 == 0,
            "must_change_password": i % 11 == 0,
            "totp_enabled": i % 2 == 0,
            "failed_logins": 0,
            "ok_logins": i % 50,
            "created_at": now - timedelta(minutes=i),
            "last_login_at": now - timedelta(seconds=i * 7) if i % 3 else None,
        }
        for i in range(n - 1)
    ]
    async with services.sessions() as session, session.begin():
        for start in range(0, len(rows), 2000):
            await session.execute(insert(User), rows[start : start + 2000])
    return admin.id


async def _case(
    services: Any, registry: Any, spec: str, args: str, params: dict, runs: int, warmup: int
) -> dict:
    from chatops import pipeline
    from chatops.buttons import ButtonTokens
    from chatops.context import Client, Context, Invocation

    tokens = ButtonTokens(services.cache)
    client = Client("telegram", str(ADMIN_TG_ID), "Bench", "en")
    samples: list[float] = []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        actor = await pipeline.identify(services, client)
        ctx = Context(
            services=services,
            registry=registry,
            surface="telegram",
            client=client,
            actor=actor,
            lang=pipeline.language(services, actor, client),
            chat_id=str(ADMIN_TG_ID),
            chat_private=True,
        )
        ctx.responder = _RenderOnly(tokens)  # type: ignore[assignment]
        inv = Invocation(spec_id=spec, args_text=args, params=dict(params), is_press=bool(params))
        view, result = await pipeline.run(ctx, inv)
        assert result == "ok", (spec, result)
        await ctx.responder.show(view)  # type: ignore[union-attr]
        if i >= warmup:
            samples.append((time.perf_counter() - t0) * 1000)
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(pct(samples, 0.95) or 0, 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from chatops.commands import load_all

    async with throwaway_services(args.database_url, "piyasa-bench-users-", lang="en") as services:
        admin_id = await _seed(services, args.users)
        registry = load_all()
        r, w = args.runs, args.warmup
        cases = {
            "whoami_baseline": await _case(services, registry, "whoami", "", {}, r, w),
            "users_first_page": await _case(services, registry, "users", "", {}, r, w),
            "users_search": await _case(services, registry, "users", "user012", {}, r, w),
            "user_card": await _case(
                services, registry, "users.card", "", {"id": admin_id + 4321}, r, w
            ),
        }
    measured = [v for k, v in cases.items() if k != "whoami_baseline"]
    return {
        "users": args.users,
        "database": services.settings.database_kind,
        **cases,
        "target_p95_ms": TARGET_P95_MS,
        "within_target": all(c["p95_ms"] < TARGET_P95_MS for c in measured),
    }
