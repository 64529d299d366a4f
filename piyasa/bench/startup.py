"""Start-up: how soon a fresh `piyasa up` answers /healthz and /readyz, how long SIGTERM
takes, and what the shell commands pay in imports.

Each run launches ``python -m piyasa.cli up`` with a fresh data dir, free ports and an
environment without the caller's PIYASA_*/OPENAI_* (so: sandbox Telegram, offline LLM),
polls both endpoints every 50 ms, reads the child's CPU seconds and RSS just before
SIGTERM, and times SIGTERM -> exit. Baseline in the same run: ``python -c "import
aiogram.types"`` (wall and CPU). The shell commands (``--help``, ``user list``, ``migrate
--status``, ``check``) run in a data dir migrated beforehand, under the import probe of
:mod:`piyasa.bench._procs`. Every phase has a 120 s ceiling: a hung launch is reported as
a failure in the figures instead of hanging the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from piyasa.bench._procs import clean_env, probe_command, run_measured

DESCRIPTION = "piyasa up to /healthz and /readyz, SIGTERM to exit, CLI import costs"
POLL_S = 0.05
CEILING_S = 120.0
TARGET_HEALTHZ_S = 2.0
READY_MARGIN_S = 3.0  # ready within `import aiogram.types` + this
TARGET_STOP_S = 5.0
COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "user list": ["user", "list"],
    "migrate --status": ["migrate", "--status"],
    "check": ["check"],
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", type=int, default=5, help="launches (and baseline runs), >= 1")
    p.add_argument(
        "--ceiling",
        type=float,
        default=CEILING_S,
        help="seconds before a phase counts as hung (default 120)",
    )


def _status(port: int, path: str) -> int | None:
    """HTTP status of ``GET path`` on 127.0.0.1 (no proxy, 1 s timeout); None on no answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def launch_up(ceiling_s: float) -> dict[str, Any]:
    """One `piyasa up` from an empty data dir; seconds from launch, CPU s, RSS MiB."""
    import psutil

    out: dict[str, Any] = {
        "healthz_s": None,
        "ready_s": None,
        "stop_s": None,
        "cpu_s": None,
        "rss_mb": None,
        "exit_code": None,
        "error": None,
    }
    with tempfile.TemporaryDirectory(prefix="piyasa-bench-startup-") as tmp:
        env = clean_env(Path(tmp) / "data")
        port = int(env["PIYASA_HTTP_PORT"])
        log_path = Path(tmp) / "up.log"
        with open(log_path, "wb") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "piyasa.cli", "up"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_ready(proc, port, start, ceiling_s, out)
                if proc.poll() is None:
                    try:
                        child = psutil.Process(proc.pid)
                        times = child.cpu_times()
                        out["cpu_s"] = round(times.user + times.system, 3)
                        out["rss_mb"] = round(child.memory_info().rss / 2**20, 1)
                    except psutil.Error:
                        pass
                    _stop(proc, ceiling_s, out)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                out["exit_code"] = proc.returncode
        if out["error"]:
            out["log_tail"] = _tail(log_path)
    return out


def _wait_ready(
    proc: subprocess.Popen, port: int, start: float, ceiling_s: float, out: dict[str, Any]
) -> None:
    while out["ready_s"] is None:
        elapsed = time.perf_counter() - start
        if proc.poll() is not None:
            out["error"] = f"exited with {proc.returncode} after {elapsed:.1f}s, before ready"
            return
        if elapsed > ceiling_s:
            what = "/readyz" if out["healthz_s"] is not None else "/healthz"
            out["error"] = f"no 200 from {what} within {ceiling_s:.0f}s"
            return
        if out["healthz_s"] is None and _status(port, "/healthz") == 200:
            out["healthz_s"] = round(time.perf_counter() - start, 3)
        if out["healthz_s"] is not None and _status(port, "/readyz") == 200:
            out["ready_s"] = round(time.perf_counter() - start, 3)
            return
        time.sleep(POLL_S)


def _stop(proc: subprocess.Popen, ceiling_s: float, out: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=ceiling_s)  # polls at <= 50 ms
        out["stop_s"] = round(time.perf_counter() - t0, 3)
    except subprocess.TimeoutExpired:
        out["error"] = f"still running {ceiling_s:.0f}s after SIGTERM (killed)"


def baseline_aiogram(ceiling_s: float) -> dict[str, Any]:
    """``python -c "import aiogram.types"``: what the Telegram client alone costs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIYASA_", "OPENAI_"))}
    run = run_measured([sys.executable, "-c", "import aiogram.types"], env, ceiling_s)
    return {
        "wall_s": round(run.wall_s, 3),
        "cpu_s": round(run.cpu_s, 3),
        "max_rss_mb": round(run.max_rss_mb, 1),
        "error": (
            f"timed out after {ceiling_s:.0f}s"
            if run.timed_out
            else None
            if run.returncode == 0
            else run.stderr[-500:]
        ),
    }


def commands_once(ceiling_s: float) -> dict[str, dict[str, Any]]:
    """Each CLI command of :data:`COMMANDS` once, in one freshly migrated data dir."""
    with tempfile.TemporaryDirectory(prefix="piyasa-bench-startup-cli-") as tmp:
        env = clean_env(Path(tmp) / "data")
        probe_command(["migrate"], env, ceiling_s)  # untimed: commands see an existing db
        return {
            name: probe_command(args, env, ceiling_s).as_json() for name, args in COMMANDS.items()
        }


def _median(samples: list[dict[str, Any]], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return round(statistics.median(values), 3) if values else None


def _summary(samples: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    return {
        **{k: _median(samples, k) for k in keys},
        "failures": sum(1 for s in samples if s.get("error")),
        "samples": samples,
    }


def measure(runs: int, ceiling_s: float) -> dict[str, Any]:
    """The whole benchmark, blocking; runs interleave baseline, launch and commands."""
    load_before = os.getloadavg()[0]
    base_samples, up_samples = [], []
    cmd_samples: dict[str, list[dict[str, Any]]] = {name: [] for name in COMMANDS}
    for i in range(max(1, runs)):
        print(f"startup bench: run {i + 1}/{max(1, runs)}", file=sys.stderr, flush=True)
        base_samples.append(baseline_aiogram(ceiling_s))
        up_samples.append(launch_up(ceiling_s))
        for name, sample in commands_once(ceiling_s).items():
            cmd_samples[name].append(sample)
    baseline = _summary(base_samples, ("wall_s", "cpu_s", "max_rss_mb"))
    up = _summary(up_samples, ("healthz_s", "ready_s", "stop_s", "cpu_s", "rss_mb"))
    commands = {}
    for name, samples in cmd_samples.items():
        commands[name] = {
            **{k: _median(samples, k) for k in ("wall_s", "cpu_s", "import_cpu_s", "max_rss_mb")},
            "aiogram_imported": any(s["aiogram_imported"] for s in samples),
            "modules": sorted({m for s in samples for m in s["modules"]}),
            "exit_codes": sorted({s["exit_code"] for s in samples}),
            "samples": samples,
        }
    targets = {
        "healthz_s": TARGET_HEALTHZ_S,
        "ready_s": None if baseline["wall_s"] is None else baseline["wall_s"] + READY_MARGIN_S,
        "stop_s": TARGET_STOP_S,
    }
    met = {
        key: target is not None
        and up[key] is not None
        and up[key] <= target
        and all(s[key] is not None for s in up_samples)
        for key, target in targets.items()
    }
    met["commands_without_aiogram"] = not any(c["aiogram_imported"] for c in commands.values())
    return {
        "runs": max(1, runs),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "baseline_import_aiogram_types": baseline,
        "up": up,
        "commands": commands,
        "targets": {
            "healthz_s": TARGET_HEALTHZ_S,
            "ready_s": None if targets["ready_s"] is None else round(targets["ready_s"], 3),
            "ready_s_rule": f"baseline wall_s + {READY_MARGIN_S:g}",
            "stop_s": TARGET_STOP_S,
        },
        "met": met,
        "all_met": all(met.values()),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    return await asyncio.to_thread(measure, args.runs, args.ceiling)
