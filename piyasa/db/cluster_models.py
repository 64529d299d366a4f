"""Several instances on one database: who runs (``instances``) and who holds which
singleton role (``leases``). Written by :mod:`piyasa.cluster`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from piyasa.db.base import Base, JSONType, UTCDateTime, utcnow


class Instance(Base):
    """One `piyasa up` process. ``heartbeat_at`` is refreshed every few seconds; a row
    whose heartbeat is older than three intervals is marked ``gone_at`` by any live
    instance. ``roles``: the singleton roles it holds; ``bots``: fleet bots it owns
    (empty until bots are spread across instances)."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[str] = mapped_column(String(32), default="")
    schema_revision: Mapped[str] = mapped_column(String(32), default="")
    roles: Mapped[list[str]] = mapped_column(JSONType, default=list)
    bots: Mapped[list[int]] = mapped_column(JSONType, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    gone_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Lease(Base):
    """A singleton role's lease on PostgreSQL: ``holder`` (an instance id) runs the role
    until ``expires_at`` (the database's clock). ``epoch`` grows at each change of holder
    (a fencing token)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    epoch: Mapped[int] = mapped_column(BigInteger, default=1)
