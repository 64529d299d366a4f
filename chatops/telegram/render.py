"""View -> Telegram: HTML parse mode, safe splitting, inline keyboards within limits.

Every piece of text is escaped before it meets markup. Long views are cut into messages
of at most 4096 UTF-16 units of HTML source (an upper bound on what Telegram counts after
parsing), only between complete segments: a tag or an entity is never cut, and a table
that spans messages is re-opened as its own ``<pre>`` in each.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from chatops.views import (
    Alert,
    Button,
    Fields,
    File,
    Image,
    Table,
    Text,
    TokenIssuer,
    View,
    table_lines,
)

log = logging.getLogger(__name__)
MAX_MESSAGE = 4096
MAX_CAPTION = 1024
MAX_ROW = 8
MAX_BUTTONS = 100
MAX_BUTTON_LABEL = 64
ALERT_ICON = {"info": "ℹ️", "success": "✅", "warning": "⚠️", "error": "⛔"}


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def u16(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _hard_split(plain: str, budget: int) -> list[str]:
    """Cut plain text so that each piece, once escaped, fits ``budget`` units.
    Cuts prefer a space and never split a character (so never an escape sequence)."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for ch in plain:
        w = u16(esc(ch))
        if size + w > budget and current:
            chunk = "".join(current)
            cut = chunk.rfind(" ")
            if cut > len(chunk) // 2:
                pieces.append(chunk[:cut])
                current = list(chunk[cut + 1 :])
                size = u16(esc("".join(current)))
            else:
                pieces.append(chunk)
                current, size = [], 0
        current.append(ch)
        size += w
    if current or not pieces:
        pieces.append("".join(current))
    return pieces


def _wrap_lines(lines: list[str], open_tag: str, close_tag: str, limit: int) -> list[str]:
    """Escape ``lines`` and pack them into segments ``open + lines + close`` within limit."""
    overhead = u16(open_tag) + u16(close_tag)
    budget = limit - overhead
    segments: list[str] = []
    buf: list[str] = []
    size = 0
    for line in lines:
        for piece in _hard_split(line, budget) if u16(esc(line)) > budget else [line]:
            escaped = esc(piece)
            add = u16(escaped) + (1 if buf else 0)
            if buf and size + add > budget:
                segments.append(open_tag + "\n".join(buf) + close_tag)
                buf, size = [], 0
                add = u16(escaped)
            buf.append(escaped)
            size += add
    if buf:
        segments.append(open_tag + "\n".join(buf) + close_tag)
    return segments


_STYLE_TAGS = {
    "plain": ("", ""),
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
}


def segments(view: View, limit: int = MAX_MESSAGE) -> list[str]:
    """The view's text as complete HTML segments, each within ``limit``."""
    out: list[str] = []
    if view.title:
        out += _wrap_lines([view.title], "<b>", "</b>", limit)
    for block in view.blocks:
        if isinstance(block, Text):
            o, c = _STYLE_TAGS[block.style]
            if block.style == "pre":
                out += _wrap_lines(block.text.split("\n"), o, c, limit)
            else:
                for line in block.text.split("\n"):
                    out += _wrap_lines([line], o, c, limit) if line else [""]
        elif isinstance(block, Alert):
            lines = block.text.split("\n")
            lines[0] = f"{ALERT_ICON.get(block.level, '')} {lines[0]}".strip()
            for line in lines:
                out += _wrap_lines([line], "", "", limit) if line else [""]
        elif isinstance(block, Fields):
            for key, value in block.items:
                key_html = "<b>" + esc(key) + ":</b> "
                if u16(key_html) + u16(esc(value)) <= limit:
                    out.append(key_html + esc(value))
                else:
                    out += _wrap_lines([key + ":"], "<b>", "</b>", limit)
                    out += _wrap_lines([value], "", "", limit)
        elif isinstance(block, Table):
            out += _wrap_lines(table_lines(block), "<pre>", "</pre>", limit)
    return out


def split_messages(parts: list[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Pack segments into messages joined by newlines; never cuts a segment."""
    messages: list[str] = []
    buf = ""
    for part in parts:
        candidate = part if not buf else buf + "\n" + part
        if u16(candidate) > limit and buf:
            messages.append(buf)
            buf = part
        else:
            buf = candidate
    if buf.strip():
        messages.append(buf)
    return [m.strip("\n") for m in messages if m.strip()]


@dataclass
class Rendered:
    texts: list[str]
    markup: InlineKeyboardMarkup | None
    files: list[File] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    protect: bool = False


def _label(text: str) -> str:
    return text if len(text) <= MAX_BUTTON_LABEL else text[: MAX_BUTTON_LABEL - 1] + "…"


async def keyboard(view: View, lang: str, issue: TokenIssuer) -> InlineKeyboardMarkup | None:
    """Inline keyboard: rows of at most 8, at most 100 buttons in all (the rest dropped,
    logged: a view that needs more should paginate)."""
    rows: list[list[Button]] = []
    for row in view.buttons:
        for i in range(0, len(row), MAX_ROW):
            rows.append(row[i : i + MAX_ROW])
    if view.pager and (nav := view.pager.nav_row(lang)):
        rows.append(nav)
    if not rows:
        return None
    total = 0
    out: list[list[InlineKeyboardButton]] = []
    for row in rows:
        built = []
        for button in row:
            if total >= MAX_BUTTONS:
                log.warning("keyboard truncated at %d buttons; paginate the view", MAX_BUTTONS)
                break
            if button.url:
                built.append(InlineKeyboardButton(text=_label(button.label), url=button.url))
            else:
                token = await issue(button)
                built.append(InlineKeyboardButton(text=_label(button.label), callback_data=token))
            total += 1
        if built:
            out.append(built)
    return InlineKeyboardMarkup(inline_keyboard=out) if out else None


async def render(view: View, lang: str, issue: TokenIssuer) -> Rendered:
    texts = split_messages(segments(view))
    return Rendered(
        texts=texts,
        markup=await keyboard(view, lang, issue),
        files=list(view.files),
        images=list(view.images),
        protect=view.protect,
    )
