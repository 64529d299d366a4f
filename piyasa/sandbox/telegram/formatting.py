"""Just enough of Telegram's message formatting to be honest about lengths and errors.

Telegram checks the 4096-character limit on the text *after* entities are parsed, and it
rejects malformed markup with 400 "can't parse entities". Both matter to a product that
chunks long LLM output, so the sandbox parses HTML, MarkdownV2 and legacy Markdown into
plain text + entities (offsets in UTF-16 code units, as the Bot API counts them).
"""

from __future__ import annotations

import html
import re
from typing import Any

from .errors import ApiError, bad_request

Entity = dict[str, Any]


def utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def _err(reason: str) -> ApiError:
    return bad_request(f"can't parse entities: {reason}")


def _byte_offset(s: str, i: int) -> int:
    return len(s[:i].encode("utf-8"))


_HTML_SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "a": "text_link",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
}
_ATTR_RE = re.compile(r'([a-zA-Z_-]+)\s*=\s*(?:"([^"]*)"|\'([^\']*)\'|([^\s"\'>]+))|([a-zA-Z_-]+)')


def parse_html(s: str) -> tuple[str, list[Entity]]:
    out: list[str] = []
    pos = 0  # UTF-16 length of out
    stack: list[tuple[str, int, dict[str, Any]]] = []
    entities: list[Entity] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "<":
            j = s.find(">", i)
            if j < 0:
                raise _err(f"Unclosed start tag at byte offset {_byte_offset(s, i)}")
            inner = s[i + 1 : j].strip()
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise _err(f"Unexpected end tag at byte offset {_byte_offset(s, i)}")
                top, start, ent = stack.pop()
                if name != top:
                    raise _err(
                        f"Unmatched end tag at byte offset {_byte_offset(s, i)}, "
                        f'expected "</{top}>", found "</{name}>"'
                    )
                if pos > start:
                    ent.update(offset=start, length=pos - start)
                    entities.append(ent)
            else:
                m = re.match(r"[a-zA-Z][a-zA-Z0-9-]*", inner)
                name = m.group(0).lower() if m else ""
                if name not in _HTML_SIMPLE:
                    shown = name or inner
                    raise _err(
                        f'Unsupported start tag "{shown}" at byte offset {_byte_offset(s, i)}'
                    )
                attrs = {
                    (a[0] or a[4]).lower(): html.unescape(a[1] or a[2] or a[3])
                    for a in _ATTR_RE.findall(inner[len(name) :])
                }
                ent: Entity = {"type": _HTML_SIMPLE[name]}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise _err(f'Unsupported start tag "span" at byte offset {_byte_offset(s, i)}')
                if name == "a":
                    url = attrs.get("href", "")
                    if url.startswith("tg://user?id="):
                        ent = {"type": "text_mention", "user": {"id": int(url[13:] or 0)}}
                    else:
                        ent["url"] = url
                if name == "blockquote" and "expandable" in attrs:
                    ent["type"] = "expandable_blockquote"
                if name == "tg-emoji":
                    ent["custom_emoji_id"] = attrs.get("emoji-id", "")
                if name == "code" and stack and stack[-1][0] == "pre":
                    lang = attrs.get("class", "")
                    if lang.startswith("language-"):
                        stack[-1][2]["language"] = lang[9:]
                stack.append((name, pos, ent))
            i = j + 1
            continue
        if c == "&":
            m = re.match(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);", s[i:])
            if m:
                ch = html.unescape(m.group(0))
                out.append(ch)
                pos += utf16_len(ch)
                i += len(m.group(0))
                continue
        out.append(c)
        pos += utf16_len(c)
        i += 1
    if stack:
        raise _err(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def parse_markdown_v2(s: str) -> tuple[str, list[Entity]]:
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int]] = []  # type, utf16 start, source index
    entities: list[Entity] = []
    quote_start: int | None = None
    i, n = 0, len(s)

    def emit(ch: str) -> None:
        nonlocal pos
        out.append(ch)
        pos += utf16_len(ch)

    def toggle(kind: str, width: int) -> None:
        nonlocal i
        for k in range(len(stack) - 1, -1, -1):
            if stack[k][0] == kind:
                _, start, _ = stack.pop(k)
                if pos > start:
                    entities.append({"type": kind, "offset": start, "length": pos - start})
                break
        else:
            stack.append((kind, pos, i))
        i += width

    while i < n:
        c = s[i]
        at_line_start = i == 0 or s[i - 1] == "\n"
        if at_line_start and quote_start is not None and c != ">":
            # a blockquote ends at the first line that does not start with ">"
            entities.append(
                {"type": "blockquote", "offset": quote_start, "length": max(pos - quote_start, 0)}
            )
            quote_start = None
        if c == "\\" and i + 1 < n:
            emit(s[i + 1])
            i += 2
        elif at_line_start and c == ">":
            if quote_start is None:
                quote_start = pos
            i += 1
        elif s.startswith("```", i):
            end = s.find("```", i + 3)
            if end < 0:
                raise _err(f"Can't find end of Pre entity at byte offset {_byte_offset(s, i)}")
            body = s[i + 3 : end]
            lang = ""
            if "\n" in body:
                first, rest = body.split("\n", 1)
                if first and " " not in first:
                    lang, body = first, rest
            body = re.sub(r"\\([`\\])", r"\1", body)
            start = pos
            for ch in body:
                emit(ch)
            ent: Entity = {"type": "pre", "offset": start, "length": pos - start}
            if lang:
                ent["language"] = lang
            if pos > start:
                entities.append(ent)
            i = end + 3
        elif c == "`":
            j = i + 1
            buf: list[str] = []
            while j < n and s[j] != "`":
                if s[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(s[j])
                j += 1
            if j >= n:
                raise _err(f"Can't find end of Code entity at byte offset {_byte_offset(s, i)}")
            start = pos
            for ch in buf:
                emit(ch)
            if pos > start:
                entities.append({"type": "code", "offset": start, "length": pos - start})
            i = j + 1
        elif s.startswith("||", i):
            toggle("spoiler", 2)
        elif s.startswith("__", i):
            toggle("underline", 2)
        elif c == "*":
            toggle("bold", 1)
        elif c == "_":
            toggle("italic", 1)
        elif c == "~":
            toggle("strikethrough", 1)
        elif c == "[":
            stack.append(("text_link", pos, i))
            i += 1
        elif c == "]" and any(e[0] == "text_link" for e in stack):
            if not s.startswith("(", i + 1):
                raise _err(f"Can't find end of TextUrl entity at byte offset {_byte_offset(s, i)}")
            j = i + 2
            url: list[str] = []
            while j < n and s[j] != ")":
                if s[j] == "\\" and j + 1 < n:
                    j += 1
                url.append(s[j])
                j += 1
            if j >= n:
                raise _err(f"Can't find end of a URL at byte offset {_byte_offset(s, i + 1)}")
            while stack[-1][0] != "text_link":
                kind, _, src = stack.pop()
                raise _err(
                    f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
                    f"{_byte_offset(s, src)}"
                )
            _, start, _ = stack.pop()
            if pos > start:
                entities.append(
                    {
                        "type": "text_link",
                        "offset": start,
                        "length": pos - start,
                        "url": "".join(url),
                    }
                )
            i = j + 1
        elif c in _MDV2_RESERVED:
            raise _err(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
        else:
            emit(c)
            i += 1
    if quote_start is not None and pos > quote_start:
        entities.append({"type": "blockquote", "offset": quote_start, "length": pos - quote_start})
    if stack:
        kind, _, src = stack[-1]
        raise _err(
            f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset {_byte_offset(s, src)}"
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


_MD_RE = re.compile(
    r"\\([_*`\[])|\*([^*]*)\*|_([^_]*)_|```(.*?)```|`([^`]*)`|\[([^\]]*)\]\(([^)]*)\)", re.S
)


def parse_markdown(s: str) -> tuple[str, list[Entity]]:
    """Legacy Markdown: no nesting, unclosed markers are an error."""
    out: list[str] = []
    pos = 0
    entities: list[Entity] = []
    last = 0
    for m in _MD_RE.finditer(s):
        chunk = s[last : m.start()]
        for marker in "*_`[":
            if marker in chunk:
                at = _byte_offset(s, last + chunk.index(marker))
                raise _err(f"Can't find end of the entity starting at byte offset {at}")
        out.append(chunk)
        pos += utf16_len(chunk)
        esc, bold, ital, pre, code, ltext, lurl = m.groups()
        if esc is not None:
            out.append(esc)
            pos += 1
        else:
            body, kind, extra = next(
                (v, k, x)
                for v, k, x in (
                    (bold, "bold", {}),
                    (ital, "italic", {}),
                    (pre, "pre", {}),
                    (code, "code", {}),
                    (ltext, "text_link", {"url": lurl}),
                )
                if v is not None
            )
            if body:
                entities.append({"type": kind, "offset": pos, "length": utf16_len(body), **extra})
            out.append(body)
            pos += utf16_len(body)
        last = m.end()
    tail = s[last:]
    for marker in "*_`[":
        if marker in tail:
            at = _byte_offset(s, last + tail.index(marker))
            raise _err(f"Can't find end of the entity starting at byte offset {at}")
    out.append(tail)
    return "".join(out), entities


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[Entity]]:
    """Visible text and entities for ``parse_mode`` (None/"" means plain text)."""
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    raise bad_request(f"unsupported parse_mode {parse_mode}")


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Telegram trims surrounding whitespace after parsing; entities move with the text."""
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    shift = utf16_len(text[:lead])
    end = utf16_len(stripped)
    kept: list[Entity] = []
    for e in entities:
        start = max(e["offset"] - shift, 0)
        stop = min(e["offset"] - shift + e["length"], end)
        if stop > start:
            kept.append({**e, "offset": start, "length": stop - start})
    return stripped, kept


_AUTO_RE = re.compile(
    r"(?P<bot_command>(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w@]))"
    r"|(?P<mention>(?<![\w@])@[A-Za-z][A-Za-z0-9_]{4,31}(?!\w))"
    r"|(?P<hashtag>(?<![\w#])#[^\W\d]\w*)"
    r"|(?P<cashtag>(?<![\w$])\$[A-Z]{1,8}(?![\w]))"
    r"|(?P<url>https?://[^\s<>\"]+)"
)


def detect_entities(text: str) -> list[Entity]:
    """Entities Telegram adds to what a user types: commands, mentions, tags, links."""
    entities: list[Entity] = []
    for m in _AUTO_RE.finditer(text):
        entities.append(
            {
                "type": m.lastgroup,
                "offset": utf16_len(text[: m.start()]),
                "length": utf16_len(m.group(0)),
            }
        )
    return entities
