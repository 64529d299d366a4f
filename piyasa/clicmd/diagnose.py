"""`piyasa diagnose [--json] [--markdown FILE] [--lang tr|en]`: the troubleshooter.

The same report as chat's `/diagnose` (:mod:`piyasa.help.diagnose`): this process runs
the health probes itself (the fleet's own figures are only in a running `piyasa up`;
read them with `/diagnose` in chat), the checks, and the log analyzer over the data
dir's ``piyasa.jsonl``. Exit 1 when any issue is critical. A database that is down does
not stop it: that is one of the issues it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from piyasa.config import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="find what is wrong: health probes, checks, the log; score and fixes",
        description="Run every health probe, the `piyasa check` checks and the log "
        "analyzer; print a health score and the issues worst first with cause, solution "
        "and evidence. Exit 1 when an issue is critical.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")
    p.add_argument("--lang", choices=("en", "tr"), default="en")
    p.set_defaults(func=run)


async def run(args: argparse.Namespace) -> int:
    from piyasa.admin.health.service import HealthService
    from piyasa.help.diagnose import diagnose
    from piyasa.help.report import to_markdown
    from piyasa.services import Services

    settings = load_settings()
    services = Services.build(settings)
    try:
        services.extras["health"] = HealthService(services, record_stop=False)
        report = await diagnose(services)
    finally:
        await services.close()
    text = to_markdown(report, args.lang)
    if args.markdown:
        await asyncio.to_thread(Path(args.markdown).write_text, text, encoding="utf-8")
    print(json.dumps(report.as_json(), indent=2, ensure_ascii=False) if args.json else text)
    return 1 if any(i.severity == "critical" for i in report.issues) else 0
