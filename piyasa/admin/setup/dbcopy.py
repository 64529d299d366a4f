"""Copy every table from one database to another (SQLite -> PostgreSQL, or back).

Used by `piyasa db copy --to URL`, the wizard's [Migrate now] and its switch at [Start
system]. Safe to re-run: the target is brought to the newest schema with Alembic, rows are
upserted by primary key (a second run converges on the source instead of failing or
duplicating), PostgreSQL sequences are moved past the copied ids, and every table's row
count is compared at the end. The source is only read.

``mirror=True`` (the switch) makes the target an exact copy in one transaction: rows the
source no longer has (a finished wizard's state, delivered outbox rows) are removed too,
and a failure or a count mismatch rolls the whole target back to what it was.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from piyasa.config import mask_url
from piyasa.errors import UserFacingError

Progress = Callable[[str, int, int, int, int], Awaitable[None] | None]
# (table, rows done in table, rows in table, tables done, tables total)
BATCH = 500


class CopyError(UserFacingError):
    """The copy cannot start or failed; the message names the next step."""


@dataclass
class TableCopy:
    name: str
    source_rows: int
    target_rows: int = 0
    copied: int = 0

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows


@dataclass
class CopyReport:
    source: str
    target: str
    tables: list[TableCopy] = field(default_factory=list)
    seconds: float = 0.0
    target_revision_before: str = ""

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.source_rows for t in self.tables)

    @property
    def mismatched(self) -> list[TableCopy]:
        return [t for t in self.tables if not t.ok]

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "source": self.source,
            "target": self.target,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "tables": {
                t.name: {"source": t.source_rows, "target": t.target_rows, "ok": t.ok}
                for t in self.tables
            },
        }


def _tables() -> list[Table]:
    from piyasa.db import all_models  # noqa: F401  (registers every table)
    from piyasa.db.base import Base

    return list(Base.metadata.sorted_tables)


async def _existing(conn: AsyncConnection) -> set[str]:
    return set(await conn.run_sync(lambda c: sa_inspect(c).get_table_names()))


def _upsert(dialect: str, table: Table, rows: list[dict[str, Any]]) -> Any:
    pk = [c.name for c in table.primary_key.columns]
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(rows)
    others = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in pk}
    if not others:
        return stmt.on_conflict_do_nothing(index_elements=pk)
    return stmt.on_conflict_do_update(index_elements=pk, set_=others)


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def _fix_sequences(conn: AsyncConnection, table: Table) -> None:
    """Move a serial/identity sequence past the copied ids so new inserts do not collide."""
    pk = list(table.primary_key.columns)
    if len(pk) != 1 or not pk[0].type._type_affinity.__name__.endswith("Integer"):
        return
    col = pk[0].name
    seq = await conn.scalar(
        text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": f'"{table.name}"', "c": col}
    )
    if not seq:
        return
    high = await conn.scalar(select(func.max(table.c[col])))
    if high is not None:
        await conn.execute(text("SELECT setval(:s, :v, true)"), {"s": seq, "v": int(high)})


async def _notify(progress: Progress | None, *args: Any) -> None:
    if progress is None:
        return
    result = progress(*args)
    if inspect.isawaitable(result):
        await result


async def copy_database(
    source: AsyncEngine | str,
    target_url: str,
    *,
    progress: Progress | None = None,
    batch: int = BATCH,
    mirror: bool = False,
) -> CopyReport:
    """Copy all rows of every Piyasa table from ``source`` to ``target_url`` and verify.

    Returns the report (``ok`` when every table's count matches). Raises :class:`CopyError`
    when the source is not at the newest schema, the target cannot be prepared, or (with
    ``mirror``) the copy failed or the counts differ; a mirror copy that raises has left
    the target as it was.
    """
    from piyasa.admin.setup.verify import normalize_database_url
    from piyasa.db import migrate
    from piyasa.db.engine import BULK_CONNECT_TIMEOUT_S, create_engine

    own_source = isinstance(source, str)
    src = (
        create_engine(normalize_database_url(source), connect_timeout_s=BULK_CONNECT_TIMEOUT_S)
        if isinstance(source, str)
        else source
    )
    target_url = normalize_database_url(target_url)
    if src.url.render_as_string(hide_password=False) == target_url:
        raise CopyError("the target is the database Piyasa already uses; give another URL")
    dst = create_engine(target_url, pool_size=2, connect_timeout_s=BULK_CONNECT_TIMEOUT_S)
    report = CopyReport(source=mask_url(str(src.url)), target=mask_url(target_url))
    started = time.perf_counter()
    try:
        head = migrate.head_revision()
        try:
            src_rev = await migrate.current_revision(src)
        except Exception as exc:
            raise CopyError(f"cannot read the source database ({type(exc).__name__})") from None
        if src_rev != head:
            raise CopyError(
                f"the source database is at schema {src_rev or 'empty'}, not {head}; "
                "run `piyasa migrate` first"
            )
        try:
            report.target_revision_before = await migrate.current_revision(dst) or ""
            await migrate.upgrade(dst)
        except Exception as exc:
            from piyasa.admin.setup.verify import _db_problem

            problem, name = _db_problem(exc)
            raise CopyError(
                f"cannot prepare the target database at {mask_url(target_url)} "
                f"({problem}: {name}); check the URL and that the server is running"
            ) from None
        if mirror:
            try:
                await _mirror(src, dst, report, progress, batch)
            except CopyError:
                raise
            except Exception as exc:  # the type only: a driver message may quote row values
                raise CopyError(
                    f"the copy stopped ({type(exc).__name__}); the target was left as it was"
                ) from None
        else:
            await _merge(src, dst, report, progress, batch)
        await _notify(progress, "", 0, 0, len(report.tables), len(report.tables))
    finally:
        report.seconds = time.perf_counter() - started
        await dst.dispose()
        if own_source:
            await src.dispose()
    return report


async def _copy_table(
    sconn: AsyncConnection,
    dconn: AsyncConnection,
    table: Table,
    tc: TableCopy,
    notify: Callable[[int], Awaitable[None]],
    batch: int,
) -> None:
    order = list(table.primary_key.columns) or list(table.columns)[:1]
    result = await sconn.stream(select(table).order_by(*order))
    async for part in result.mappings().partitions(batch):
        rows = [dict(r) for r in part]
        await dconn.execute(_upsert(dconn.dialect.name, table, rows))
        tc.copied += len(rows)
        await notify(tc.copied)
    if dconn.dialect.name == "postgresql":
        await _fix_sequences(dconn, table)


async def _merge(
    src: AsyncEngine, dst: AsyncEngine, report: CopyReport, progress: Progress | None, batch: int
) -> None:
    """Upsert table by table (one transaction each), then count."""
    async with src.connect() as sconn:
        present = await _existing(sconn)
        tables = [t for t in _tables() if t.name in present]
        for i, table in enumerate(tables):
            tc = TableCopy(table.name, await _count(sconn, table))
            report.tables.append(tc)

            async def notify(done: int, tc: TableCopy = tc, i: int = i) -> None:
                await _notify(progress, tc.name, done, tc.source_rows, i, len(tables))

            await notify(0)
            async with dst.begin() as dconn:
                await _copy_table(sconn, dconn, table, tc, notify, batch)
    async with dst.connect() as dconn:
        by_name = {t.name: t for t in _tables()}
        for tc in report.tables:
            tc.target_rows = await _count(dconn, by_name[tc.name])


async def _snapshot(conn: AsyncConnection) -> None:
    """Read every table from one snapshot, so the counts and rows agree across tables.

    PostgreSQL: REPEATABLE READ. SQLite: an explicit BEGIN (the driver would run each
    SELECT in its own implicit snapshot); in WAL mode writers go on meanwhile.
    """
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="REPEATABLE READ")
    else:
        await conn.exec_driver_sql("BEGIN")


async def _mirror(
    src: AsyncEngine, dst: AsyncEngine, report: CopyReport, progress: Progress | None, batch: int
) -> None:
    """Empty and refill every table in one target transaction; counts are checked before
    it commits, so the target is either an exact copy or unchanged."""
    async with src.connect() as sconn, dst.connect() as dconn:
        await _snapshot(sconn)
        present = await _existing(sconn)
        tables = [t for t in _tables() if t.name in present]
        async with dconn.begin():
            for table in reversed(tables):  # children first: no foreign key is left dangling
                await dconn.execute(table.delete())
            for i, table in enumerate(tables):
                tc = TableCopy(table.name, await _count(sconn, table))
                report.tables.append(tc)

                async def notify(done: int, tc: TableCopy = tc, i: int = i) -> None:
                    await _notify(progress, tc.name, done, tc.source_rows, i, len(tables))

                await notify(0)
                await _copy_table(sconn, dconn, table, tc, notify, batch)
                tc.target_rows = await _count(dconn, table)
            if not report.ok:
                bad = ", ".join(
                    f"{t.name} {t.source_rows}≠{t.target_rows}" for t in report.mismatched
                )
                raise CopyError(f"row counts differ ({bad}); the target was left as it was")
