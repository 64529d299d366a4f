"""A request written byte by byte: to see what a server answers before a body arrives."""

from __future__ import annotations

import asyncio

import yarl

from piyasa.tasks import wait_for


async def status_before_body(
    url: str,
    declared: int,
    head: bytes,
    headers: dict[str, str] | None = None,
    ceiling_s: float = 120.0,
) -> int:
    """POST declaring ``declared`` body bytes, send only ``head`` of them, and return the
    status the server answers with. A server that reads the body first waits for the rest;
    ``ceiling_s`` (a hang catcher, not a budget) turns that into ``TimeoutError``."""
    target = yarl.URL(url)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        lines = [f"POST {target.raw_path_qs} HTTP/1.1", f"Host: {target.host}:{target.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines += [f"Content-Length: {declared}", "", ""]
        writer.write("\r\n".join(lines).encode() + head)
        await writer.drain()
        status_line = await wait_for(reader.readline(), ceiling_s)
        return int(status_line.split()[1])
    finally:
        writer.close()
