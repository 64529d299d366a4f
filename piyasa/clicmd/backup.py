"""`piyasa backup create|list|verify|test-restore|restore|delete|prune|download|schedule`.

The same :class:`piyasa.backup.service.BackupService` the chat uses. Progress goes to the
terminal (stderr) when there is one; ``--json`` prints one JSON document on stdout.
`restore` asks to type RESTORE unless ``--yes``. Run `restore` while `piyasa up` is
stopped, or restore from chat (`/backup`), which pauses the running fleet itself.
Exit codes: 0 done, 1 refused or failed (the reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from piyasa.backup.words import error_text
from piyasa.clicmd.user import _with_services


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backup",
        help="backups: create, list, verify, test-restore, restore, delete, prune, schedule",
        description="Encrypted, verified backups of the database (local or S3).",
    )
    bsub = p.add_subparsers(dest="backup_command", metavar="ACTION")

    def add(name: str, helptext: str, needs_id: bool = False) -> argparse.ArgumentParser:
        sp = bsub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:])
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument(
            "--passphrase-stdin", action="store_true", help="read the backup passphrase from stdin"
        )
        if needs_id:
            sp.add_argument("id", help="backup id (from `piyasa backup list`)")
        sp.set_defaults(func=lambda a, n=name: _run(a, n))
        return sp

    c = add("create", "take a backup now (stored, then verified)")
    c.add_argument("--kind", default="manual", choices=["manual", "daily", "weekly", "monthly"])
    add("list", "the backups, newest first")
    add("verify", "decrypt and checksum a backup", True)
    add("test-restore", "restore into a scratch database and compare row counts", True)
    r = add("restore", "replace the database with a backup (a safety backup first)", True)
    r.add_argument("--yes", action="store_true", help="do not ask to type RESTORE")
    r.add_argument("--no-safety", action="store_true", help="skip the safety backup")
    add("delete", "delete a backup", True)
    add("prune", "delete the scheduled backups no retention rule keeps")
    add("passphrase", "make a new backup passphrase (shown once; keep it off this machine)")
    d = add("download", "copy a backup's archive to a file", True)
    d.add_argument("dest", help="where to write the archive")
    s = add("schedule", "show the schedule, or change it with the options")
    s.add_argument("--daily", help="HH:MM, or off")
    s.add_argument("--weekly", help="'mon HH:MM', or off")
    s.add_argument("--monthly", help="'1 HH:MM', or off")
    s.add_argument("--timezone")
    s.add_argument("--keep", help="retention as daily,weekly,monthly counts, e.g. 7,4,12")
    p.set_defaults(func=lambda _args: p.print_help() or 0)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)


def _print_json(value: Any) -> None:
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    elif isinstance(value, list):
        value = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for v in value]
    print(json.dumps(value, default=_json_default, indent=2, ensure_ascii=False))


def _line(b: Any) -> str:
    ok = "✓" if b.verified_at else "✗"
    size = f"{b.size_bytes / 1e6:.1f} MB"
    rows = sum(b.rows.values())
    kept = ",".join(b.kept_by)
    return f"{b.id}  {b.kind:<7} {size:>10}  verified {ok}  {rows} rows  kept by {kept}"


def _progress(args: argparse.Namespace) -> Any:
    if args.json or not sys.stderr.isatty():
        return None

    async def show(fraction: float, step: str) -> None:
        name = step.rsplit(".", 1)[-1]
        sys.stderr.write(f"\r{name:<10} {fraction * 100:5.1f}%")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _confirm(args: argparse.Namespace) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("piyasa: restore needs --yes when there is no terminal", file=sys.stderr)
        return False
    answer = input(f"This replaces the database with {args.id}. Type RESTORE to go on: ")
    return answer.strip() == "RESTORE"


def _schedule_args(args: argparse.Namespace, current: Any) -> dict[str, Any]:
    def pick(kind: str) -> str | None:
        given = getattr(args, kind)
        if given is None:
            return current.times.get(kind)
        return None if given.strip().lower() == "off" else given

    retention = dict(current.retention)
    if args.keep:
        parts = args.keep.split(",")
        for rule, value in zip(("daily", "weekly", "monthly"), parts, strict=False):
            retention[rule] = int(value) if value.strip().isdigit() else value
    return {
        "daily": pick("daily"),
        "weekly": pick("weekly"),
        "monthly": pick("monthly"),
        "timezone": args.timezone or current.timezone,
        "retention": retention,
    }


async def _run(args: argparse.Namespace, action: str) -> int:
    from piyasa.backup.schedule import BackupScheduler
    from piyasa.backup.service import BackupError, BackupService

    passphrase = sys.stdin.readline().rstrip("\r\n") if args.passphrase_stdin else None
    if action == "restore":
        from piyasa.admin.setup import pidfile
        from piyasa.config import load_settings

        running = pidfile.read(load_settings(create_dirs=False).data_dir)
        if running is not None:  # its open connections would keep writing the old database
            print(
                f"piyasa: backup restore: piyasa is running (pid {running.pid}); stop it first "
                "(`piyasa stop`) or restore from chat (/backup), which pauses the fleet",
                file=sys.stderr,
            )
            return 1
        if not _confirm(args):
            return 1

    async def go(services: Any) -> Any:
        svc = BackupService(services, passphrase=passphrase)
        progress = _progress(args)
        if action == "create":
            return await svc.create(args.kind, progress=progress)
        if action == "list":
            return await svc.list()
        if action == "verify":
            return await svc.verify(args.id, progress=progress)
        if action == "test-restore":
            return await svc.test_restore(args.id, progress=progress)
        if action == "restore":
            return await svc.restore(
                args.id, actor="cli", progress=progress, safety=not args.no_safety
            )
        if action == "delete":
            await svc.delete(args.id)
            return {"deleted": args.id}
        if action == "passphrase":
            return {"passphrase": await svc.new_passphrase(), "shown": "once"}
        if action == "prune":
            return {"deleted": await svc.prune()}
        if action == "download":
            path = await svc.open_archive(args.id)
            shutil.copyfile(path, Path(args.dest))
            svc.storage.release(path) if svc.storage.name == "s3" else None
            return {"written": args.dest}
        sched = BackupScheduler(svc)
        svc.schedule_config = await sched.load()
        if any(
            getattr(args, k) is not None for k in ("daily", "weekly", "monthly", "timezone", "keep")
        ):
            return await svc.set_schedule(**_schedule_args(args, svc.schedule_status()))
        return svc.schedule_status()

    try:
        result = await _with_services(go)
    except BackupError as exc:
        if args.json:
            print(json.dumps({"error": exc.key, "params": exc.params, "text": error_text(exc)}))
        print(f"piyasa: backup {action}: {error_text(exc)}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(result)
    elif isinstance(result, list):
        for b in result:
            print(_line(b))
        if not result:
            print("no backups yet")
    elif result is None:
        print("restored (no safety backup taken)")
    elif hasattr(result, "kept_by"):
        label = "safety backup: " if action == "restore" else ""
        print(label + _line(result))
    elif hasattr(result, "next_runs"):
        print(f"enabled: {result.enabled}  timezone: {result.timezone}")
        for kind, when in result.next_runs.items():
            print(f"  {kind:<8} {result.times.get(kind, '')!s:<10} next {when:%Y-%m-%d %H:%M} UTC")
        print("  keep " + ", ".join(f"{k} {v}" for k, v in result.retention.items()))
        if result.last_run:
            print(f"  last run {result.last_run:%Y-%m-%d %H:%M} UTC: {result.last_result}")
    else:
        print(json.dumps(result))
    return 0
