"""The ``instances`` health component: every live instance, its version, roles and last
heartbeat (from the ``instances`` table), so `/health`, `/api/health` and the status page
show who runs and who holds the admin role.

State: healthy; warning when live instances run different versions or none holds the
admin role (on a shared lease store); critical when this instance's own heartbeat is not
being written although the database answers (its loop is stalled). While the database
is away the component is unknown: the database component already alerts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from piyasa.admin.health.model import Reading, State
from piyasa.admin.health.words import phrase
from piyasa.cluster.instances import GONE_AFTER, list_instances

if TYPE_CHECKING:
    from piyasa.admin.health.probes import ProbeContext
    from piyasa.cluster import Cluster


class InstancesProbe:
    name = "instances"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def check(self, ctx: ProbeContext) -> Reading:
        from piyasa.cluster import ADMIN_ROLE_PARTS

        try:
            async with ctx.services.sessions() as session:
                rows = await list_instances(session)
        except Exception as exc:  # the database is away: its own component says so, loudly
            return Reading.said(
                self.name,
                State.UNKNOWN,
                [phrase("unreachable", error=type(exc).__name__)],
                {"instance": self.cluster.id, "lease": self.cluster.lease.kind},
                private=frozenset({"instance"}),
            )
        now = ctx.now if ctx.now.tzinfo else ctx.now.replace(tzinfo=UTC)
        me = self.cluster.id
        listed: dict[str, dict[str, Any]] = {}  # host:pid -> figures (a chat detail row each)
        for r in rows:
            listed[_short(r.id)] = {
                "this_instance": r.id == me,
                "version": r.version,
                "schema": r.schema_revision,
                "roles": ", ".join(r.roles) or "standby",
                "bots": len(r.bots),
                "heartbeat_age_s": round(max(0.0, (now - r.heartbeat_at).total_seconds()), 1),
                "started_at": r.started_at.isoformat(timespec="seconds"),
            }
        admin = next((r.id for r in rows if ADMIN_ROLE_PARTS[0] in r.roles), None)
        versions = sorted({r.version for r in rows})
        said = [phrase("instances", n=len(rows))]
        state = State.HEALTHY
        if admin is not None:
            said.append(phrase("admin_role_on", who=_short(admin)))
        elif self.cluster.lease.kind != "local":
            said.append(phrase("admin_role_nobody"))
            state = State.WARNING
        if len(versions) > 1:
            said.append(phrase("versions_differ", versions=", ".join(versions)))
            state = State.WARNING
        last = self.cluster.registry.last_beat
        late_after = self.cluster.registry.heartbeat_s * GONE_AFTER
        if last is None or (datetime.now(UTC) - last).total_seconds() > late_after:
            said.append(phrase("heartbeat_late"))
            state = State.CRITICAL
        details = {
            "instance": me,
            "lease": self.cluster.lease.kind,
            "instances": listed,
            "admin_role": admin,
        }
        return Reading.said(
            self.name,
            state,
            said,
            details,
            private=frozenset({"instance", "instances", "admin_role"}),
        )


def _short(instance_id: str) -> str:
    """``host:pid`` without the random suffix, for a summary line."""
    return instance_id.rsplit(":", 1)[0]
