"""`piyasa analytics overview|bots|bot|export` as a real process on a seeded database (both
backends): ``--json`` figures are the query API's, the CSV is the chat's (formula-injection
safe), the tables are readable, and bad input is one line on stderr with exit code 2."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy import update

from piyasa.analytics import csvout
from piyasa.analytics.queries import Analytics, Period
from piyasa.analytics.report import all_bots, plain
from piyasa.db.engine import create_engine, make_sessionmaker
from piyasa.db.models import Bot
from tests.analytics.dataset import NOW, exact, seed
from tests.e2e.procs import base_env, run_cli

LABEL = "2026-11-01..2026-11-30"


def _ok(env: dict[str, str], *args: str) -> str:
    done = run_cli(["analytics", *args], env)
    assert done.returncode == 0, f"`piyasa analytics {' '.join(args)}`: {done.stderr}"
    return done.stdout


def _refused(env: dict[str, str], *args: str) -> str:
    done = run_cli(["analytics", *args], env)
    assert done.returncode == 2, f"`piyasa analytics {' '.join(args)}`: {done.returncode}"
    assert done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    return done.stderr


async def test_figures_tables_and_csv(db_url: str, tmp_path: Path) -> None:
    env = base_env(tmp_path / "data", PIYASA_DATABASE_URL=db_url, PIYASA_LANG="en")
    assert run_cli(["migrate"], env).returncode == 0
    engine = create_engine(db_url)
    try:
        sessions = make_sessionmaker(engine)
        await seed(sessions, n=400)
        shown = json.loads(_ok(env, "overview", "--period", LABEL, "--json"))  # rolls up too
        q, period = Analytics(sessions), Period.parse(LABEL, NOW)
        assert shown == plain(await q.overview(period))
        ex = await exact(sessions, period.start, period.end)
        f = shown["figures"]
        assert (f["messages"], f["sent"], f["failed"]) == (ex.messages, ex.sent, ex.failed)
        assert Decimal(f["cost_usd"]) == ex.cost
        assert json.loads(_ok(env, "show", "--period", LABEL, "--json")) == shown

        now = next(
            r for r in _ok(env, "overview", "--period", LABEL).splitlines() if r[:4] == "now "
        )
        assert now.split()[1:3] == [str(f["messages"]), f"{f['success_rate']:.1%}"]
        data = json.loads(
            _ok(env, "bots", "--period", LABEL, "--sort", "p95", "--limit", "2", "--json")
        )
        rows, total = await q.bots(period, sort="p95", page=0, page_size=2)
        assert data["bots"] == plain(rows) and data["total"] == total == 4
        table = _ok(env, "bots", "--period", LABEL, "--sort", "cost").splitlines()
        assert table[1].split()[:3] == ["bot", "messages", "success"] and len(table) == 2 + 4
        assert table[2].startswith(f"#{(await all_bots(q, period, 'cost'))[0].bot_id} ")

        detail = plain(await q.bot_detail(2, period))
        for ref in ("2", "@bot2", "Bot 2"):
            assert json.loads(_ok(env, "bot", ref, "--period", LABEL, "--json"))["bot"] == detail
        assert "topics: " in _ok(env, "bot", "bot2", "--period", LABEL)

        async with sessions() as s, s.begin():  # a name a spreadsheet would run as a formula
            await s.execute(update(Bot).where(Bot.id == 3).values(display_name="=HYPERLINK(1)"))
        out = run_cli(["analytics", "export", "bots", "--period", LABEL], env)
        want = csvout.bots_csv(await all_bots(q, period)).decode()
        assert out.returncode == 0 and out.stdout == want.replace("\r\n", "\n")  # text mode
        assert "'=HYPERLINK(1)" in out.stdout
        dest = tmp_path / "bot2.csv"
        report = json.loads(
            _ok(env, "export", "bot", "--bot", "2", "--period", LABEL, "--out", str(dest), "--json")
        )
        assert dest.read_bytes() == csvout.bot_csv(await q.bot_detail(2, period))
        assert report["rows"] == dest.read_bytes().count(b"\n") - 1

        assert "no bot 'nobody'" in _refused(env, "bot", "nobody", "--period", LABEL)
        assert "no bot" in _refused(env, "bot", "999")
        assert "unknown period" in _refused(env, "bots", "--period", "fortnight")
        assert "starts after it ends" in _refused(
            env, "overview", "--period", "2026-11-30..2026-11-01"
        )
        assert "keep 400 days" in _refused(env, "export", "--period", "2020-01-01..2020-01-02")
        assert "at least 1" in _refused(env, "bots", "--limit", "0")
        assert "needs --bot" in _refused(env, "export", "bot")
    finally:
        await engine.dispose()
