# piyasa/admin/notify/channels/base.py  (owned by nchan; you may create an identical copy if you need it first —
# keep it byte-identical to this spec so the merge is trivial)
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    title: str  # localised for the recipient
    body_text: str  # plain text
    body_html: str | None  # for email; None -> text only
    severity: str  # "critical" | "warning" | "info" | "success"
    fingerprint: str
    source: str
    link: str | None = None  # status page / details URL
    fields: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after_s: float | None = None
    ): ...


class Channel(Protocol):
    kind: str  # "email" | "webhook" | "apprise"
    name: str  # operator-chosen, unique

    async def send(self, message: OutgoingMessage) -> None: ...  # raises DeliveryError
    async def check(self) -> list[str]: ...  # configuration problems (empty = fine)


def build_channel(
    kind: str, name: str, config: dict[str, str]
) -> Channel: ...  # ValueError with a clear message
