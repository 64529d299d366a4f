"""Wizard steps 4 and 5: the database (with [Migrate now]) and the advanced settings."""

from __future__ import annotations

import time
from typing import Any

from chatops import i18n
from chatops.commands.setup.common import choice, flash, problem, take_flash, yes
from chatops.context import Context
from chatops.dialogs import STAY
from chatops.views import Alert, Fields, Text, View
from piyasa.admin.setup import verify, wizard
from piyasa.admin.setup.dbcopy import CopyError, copy_database
from piyasa.config import mask_url

PROGRESS_EDIT_EVERY_S = 0.5

# --- step 4: database -------------------------------------------------------------------------


async def render_db(ctx: Context, data: dict[str, Any]) -> View:
    db = data.setdefault("db", {})
    settings = ctx.services.settings
    view = View(title=ctx.t("setup.db.title"))
    current = (
        "SQLite" if settings.sqlite_default else f"PostgreSQL ({mask_url(settings.database_url)})"
    )
    view.blocks.append(Fields([(ctx.t("setup.db.current"), current)]))
    if db.get("kind") == "postgresql":
        if db.get("where"):
            view.blocks.append(Fields([(ctx.t("setup.db.target"), db["where"])]))
        if not db.get("url_enc"):
            view.blocks.append(Text(ctx.t("setup.db.send_url")))
    else:
        view.blocks.append(Text(ctx.t("setup.db.intro")))
    view.blocks.extend(take_flash(ctx))
    if db.get("kind") == "postgresql":
        row = []
        if db.get("url_enc"):
            label = "setup.try_again" if db.get("failed") else "setup.db.test"
            row.append(choice(ctx, ctx.t(label), "db", "test"))
        if db.get("tested") and settings.sqlite_default:
            row.append(choice(ctx, ctx.t("setup.db.migrate"), "db", "migrate"))
        view.row(*row)
        last = [choice(ctx, ctx.t("setup.db.keep_sqlite"), "db", "sqlite")]
        if db.get("migrated") or not settings.sqlite_default:
            last.insert(0, choice(ctx, ctx.t("setup.next"), "db", "next"))
        view.row(*last)
    else:
        view.row(
            choice(ctx, ctx.t("setup.db.keep_current"), "db", "sqlite"),
            choice(ctx, ctx.t("setup.db.use_pg"), "db", "pg"),
        )
    return view


async def _test_db(ctx: Context, db: dict[str, Any]) -> None:
    url = ctx.services.box.decrypt(db["url_enc"])
    outcome = await verify.database_test(url, deadline_s=5)
    if outcome.ok:
        db.update(tested=True, failed=False, where=outcome.data["where"])
        flash("success", "setup.db.ok", where=outcome.data["where"], ms=outcome.latency_ms)
    else:
        db.update(tested=False, failed=True)
        flash("error", "setup.raw", text=problem(ctx, "db", outcome, where=db.get("where", "")))


async def choose_db(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    db = data.setdefault("db", {})
    if value == "sqlite":
        data["db"] = {"kind": "keep"}
        return None
    if value == "next":
        return None
    if value == "pg":
        db["kind"] = "postgresql"
    elif value == "test" and db.get("url_enc"):
        await _test_db(ctx, db)
    elif value == "migrate" and db.get("tested"):
        await _migrate(ctx, db)
    return STAY


async def text_db(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    db = data.setdefault("db", {})
    if db.get("kind") != "postgresql":
        flash("info", "setup.use_buttons")
        return STAY
    try:
        url = verify.normalize_database_url(text.strip())
    except ValueError:
        flash("error", "setup.db.bad_url")
        return STAY
    if not url.startswith("postgresql"):
        flash("error", "setup.db.bad_url")
        return STAY
    db.update(url_enc=ctx.services.box.encrypt(url), where=verify._where(url), migrated=None)
    await _test_db(ctx, db)
    return STAY


async def _migrate(ctx: Context, db: dict[str, Any]) -> None:
    """Copy everything with a live progress message, then check row counts."""
    target = ctx.services.box.decrypt(db["url_enc"])
    ref = None
    if ctx.responder is not None:
        ref = await ctx.send(View(blocks=[Alert("info", ctx.t("setup.db.copying", pct=0))]))
    last = [0.0]

    async def progress(table: str, done: int, total: int, i: int, n: int) -> None:
        now = time.monotonic()
        if ref is None or not table or now - last[0] < PROGRESS_EDIT_EVERY_S:
            return
        last[0] = now
        pct = int(100 * i / max(n, 1))
        text = ctx.t("setup.db.copying_table", pct=pct, table=table, done=done, total=total)
        await ctx.edit(ref, View(blocks=[Alert("info", text)]))

    try:
        report = await copy_database(ctx.services.engine, target, progress=progress)
    except CopyError as exc:
        db["migrated"] = None
        flash("error", "setup.db.copy_failed", reason=str(exc))
        return
    if ref is not None:
        await ctx.edit(ref, View(blocks=[Alert("info", ctx.t("setup.db.copying", pct=100))]))
    if report.ok:
        db["migrated"] = {"rows": report.rows, "tables": len(report.tables)}
        flash(
            "success",
            "setup.db.copied",
            rows=report.rows,
            tables=len(report.tables),
            s=round(report.seconds, 1),
        )
    else:
        db["migrated"] = None
        bad = ", ".join(f"{t.name} {t.source_rows}≠{t.target_rows}" for t in report.mismatched)
        flash("error", "setup.db.count_mismatch", tables=bad)


# --- step 5: advanced --------------------------------------------------------------------------


async def render_adv(ctx: Context, data: dict[str, Any]) -> View:
    adv = data.setdefault("adv", {})
    adv.setdefault("monitoring", True)
    adv.setdefault("backup", "daily")
    adv.setdefault("lang", ctx.services.settings.lang)
    view = View(title=ctx.t("setup.adv.title"))
    redis = adv.get("redis_where") or ctx.t("setup.adv.redis_none")
    view.blocks.append(
        Fields(
            [
                ("Redis", redis),
                (ctx.t("setup.adv.monitoring"), yes(ctx, adv["monitoring"])),
                (ctx.t("setup.adv.backup"), ctx.t(f"setup.adv.backup.{adv['backup']}")),
                (ctx.t("setup.adv.lang"), ctx.t(f"lang.name.{adv['lang']}")),
            ]
        )
    )
    if adv.get("phase") == "redis":
        view.blocks.append(Text(ctx.t("setup.adv.send_redis")))
    view.blocks.extend(take_flash(ctx))
    redis_row = [choice(ctx, ctx.t("setup.adv.redis_set"), "adv", "redis")]
    if adv.get("redis_enc"):
        label = "setup.try_again" if adv.get("redis_failed") else "setup.adv.redis_test"
        redis_row.append(choice(ctx, ctx.t(label), "adv", "redis_test"))
    view.row(*redis_row)
    view.row(choice(ctx, ctx.t("setup.adv.monitoring_toggle"), "adv", "monitoring"))
    view.row(
        *[
            choice(ctx, ctx.t(f"setup.adv.backup.{b}"), "adv", f"backup:{b}")
            for b in wizard.BACKUP_CHOICES
        ]
    )
    view.row(
        *[
            choice(ctx, i18n.t(code, f"lang.name.{code}"), "adv", f"lang:{code}")
            for code in i18n.LANGS
        ]
    )
    view.row(choice(ctx, ctx.t("setup.next"), "adv", "next"))
    return view


async def _test_redis(ctx: Context, adv: dict[str, Any]) -> None:
    url = ctx.services.box.decrypt(adv["redis_enc"])
    outcome = await verify.redis_test(url)
    adv["redis_failed"] = not outcome.ok
    if outcome.ok:
        flash("success", "setup.adv.redis_ok", version=outcome.data.get("version", ""))
    else:
        flash("error", "setup.raw", text=problem(ctx, "redis", outcome))


async def choose_adv(ctx: Context, data: dict[str, Any], value: str) -> str | None:
    adv = data.setdefault("adv", {})
    if value == "next":
        adv["phase"] = ""
        return None
    if value == "redis":
        adv["phase"] = "redis"
    elif value == "redis_test" and adv.get("redis_enc"):
        await _test_redis(ctx, adv)
    elif value == "monitoring":
        adv["monitoring"] = not adv.get("monitoring", True)
    elif value.startswith("backup:") and value[7:] in wizard.BACKUP_CHOICES:
        adv["backup"] = value[7:]
    elif value.startswith("lang:") and value[5:] in i18n.LANGS:
        adv["lang"] = value[5:]
    return STAY


async def text_adv(ctx: Context, data: dict[str, Any], text: str) -> str | None:
    adv = data.setdefault("adv", {})
    if adv.get("phase") != "redis":
        flash("info", "setup.use_buttons")
        return STAY
    url = text.strip()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        flash("error", "setup.adv.redis_bad_url")
        return STAY
    adv.update(redis_enc=ctx.services.box.encrypt(url), redis_where=mask_url(url), phase="")
    await _test_redis(ctx, adv)
    return STAY
