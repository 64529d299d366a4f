"""`piyasa analytics show|rebuild|reprice|prune` in-process on SQLite: the figures the shell
prints are the raw rows' figures, and bad input gets a clear error with nothing changed."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from piyasa.analytics.queries import Period
from piyasa.cli import main
from piyasa.db.engine import create_engine, make_sessionmaker
from tests.analytics.dataset import NOW, exact, seed


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["analytics", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


async def _seeded(url: str, n: int) -> None:
    engine = create_engine(url)
    try:
        await seed(make_sessionmaker(engine), n=n)
    finally:
        await engine.dispose()


async def _exact(url: str, period: Period):  # type: ignore[no-untyped-def]
    engine = create_engine(url)
    try:
        return await exact(make_sessionmaker(engine), period.start, period.end)
    finally:
        await engine.dispose()


def test_shell_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PIYASA_DATA_DIR", str(data))
    url = f"sqlite+aiosqlite:///{data / 'piyasa.db'}"
    monkeypatch.setenv("PIYASA_DATABASE_URL", url)
    code, out, _ = _run(capsys, "show", "--json")  # creates the schema, nothing to show
    assert code == 0 and json.loads(out)["figures"]["messages"] == 0
    asyncio.run(_seeded(url, 400))
    label = "2026-11-01..2026-11-30"
    period = Period.parse(label, NOW)
    code, out, _ = _run(capsys, "show", "--period", label, "--json")
    shown = json.loads(out)["figures"]
    ex = asyncio.run(_exact(url, period))
    assert (shown["messages"], shown["sent"], shown["failed"]) == (ex.messages, ex.sent, ex.failed)
    assert Decimal(shown["cost_usd"]) == ex.cost

    code, out, _ = _run(capsys, "rebuild", "--json")
    assert code == 0 and json.loads(out)["messages"] >= ex.messages
    code, out, _ = _run(capsys, "show", "--period", label, "--json")
    assert json.loads(out)["figures"] == shown

    code, out, err = _run(capsys, "show", "--period", "2026-11-30..2026-11-01")
    assert code == 2 and "starts after it ends" in err
    code, out, err = _run(capsys, "show", "--period", "fortnight")
    assert code == 2 and "unknown period" in err
    code, out, err = _run(capsys, "reprice", "--from", "2026-11-30", "--to", "2026-11-01")
    assert code == 2 and "--from is after --to" in err
    code, out, err = _run(capsys, "prune", "--older-than", "0")
    assert code == 2 and "at least 1" in err

    code, out, _ = _run(capsys, "prune", "--older-than", "1", "--json")
    assert code == 0 and json.loads(out)["messages"] > 0
    code, out, _ = _run(capsys, "show", "--period", label, "--json")
    assert json.loads(out)["figures"] == shown  # raw rows gone, rollups stay
