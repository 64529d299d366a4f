"""Request parameters from any body Telegram accepts.

Telegram takes query strings, urlencoded forms, JSON and multipart. aiogram sends scalars as
strings and nested objects (reply_markup, scope, ...) JSON-encoded inside a form field, so
every accessor here coerces from either shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .errors import bad_request


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Params:
    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def raw(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def string(self, name: str, default: str | None = None) -> str | None:
        v = self.values.get(name)
        if v is None:
            return default
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    def integer(self, name: str, default: int | None = None) -> int | None:
        v = self.values.get(name)
        if v in (None, ""):
            return default
        if isinstance(v, bool):
            return int(v)
        try:
            return int(v)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def number(self, name: str, default: float | None = None) -> float | None:
        v = self.values.get(name)
        if v in (None, ""):
            return default
        try:
            return float(v)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def flag(self, name: str, default: bool = False) -> bool:
        v = self.values.get(name)
        if v in (None, ""):
            return default
        if isinstance(v, bool):
            return v
        return str(v).strip().lower() in ("true", "1", "yes", "on")

    def obj(self, name: str, default: Any = None) -> Any:
        v = self.values.get(name)
        if v in (None, ""):
            return default
        if isinstance(v, (dict, list)):
            return v
        try:
            return json.loads(v)
        except (TypeError, ValueError):
            raise bad_request(f"can't parse {name} JSON object") from None

    def logged(self) -> dict[str, Any]:
        """Parsed values for the call log: JSON fields decoded, uploads summarised."""
        out: dict[str, Any] = {}
        for k, v in self.values.items():
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    v = json.loads(v)
                except ValueError:
                    pass
            out[k] = v
        for k, f in self.files.items():
            out[k] = {"filename": f.filename, "size": len(f.data)}
        return out


async def read_params(request: web.Request) -> Params:
    """Merge the query string and the body, whatever its content type."""
    p = Params(values=dict(request.query))
    ctype = request.content_type
    if not request.can_read_body:
        return p
    if ctype == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("can't parse JSON request body") from None
        if isinstance(body, dict):
            p.values.update(body)
    elif ctype == "multipart/form-data":
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            name = getattr(part, "name", None)
            if not name:
                continue
            filename = getattr(part, "filename", None)
            data = await part.read()  # type: ignore[union-attr]
            if filename is not None:
                p.files[name] = Upload(
                    filename=filename,
                    content_type=part.headers.get("Content-Type", "application/octet-stream"),
                    data=bytes(data),
                )
            else:
                p.values[name] = bytes(data).decode("utf-8")
    else:
        form = await request.post()
        for k, v in form.items():
            if isinstance(v, web.FileField):
                p.files[k] = Upload(v.filename, v.content_type, v.file.read())
            else:
                p.values[k] = v
    return p
