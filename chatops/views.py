"""Surface-neutral screens. Handlers return a View; Telegram and Slack render it.

Text in a View is plain text: each renderer escapes it for its own markup, so user data can
never break a message. Buttons name an action of a command (``"users.page"``) plus small
JSON params; the surface turns each into a short server-side token at render time, so the
same View renders identically on every surface and nothing client-side is trusted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from chatops import i18n

Style = Literal["default", "primary", "danger"]
Level = Literal["info", "success", "warning", "error"]

# Unicode bidi embeddings/overrides (U+202A-U+202E) and isolates (U+2066-U+2069): inside a
# user-supplied name they reorder what follows ("Trojan Source", CVE-2021-42574), so a
# name could make a screen read differently from what it says.
_BIDI = {cp: f"[U+{cp:04X}]" for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def neutral(text: str) -> str:
    """``text`` with every bidi embedding, override and isolate character shown as a
    visible ``[U+202E]`` marker instead of reordering the text around it.

    Every block, title, button label and caption of a View passes through here when it is
    built, so user-supplied names (chat titles, display names, search words, audit
    targets) can never reorder a screen, whichever handler put them there."""
    return text.translate(_BIDI)


@dataclass(frozen=True)
class Text:
    text: str
    style: Literal["plain", "bold", "italic", "code", "pre"] = "plain"

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", neutral(self.text))


@dataclass(frozen=True)
class Fields:
    """Key/value pairs, rendered as ``key: value`` lines (Telegram) or a fields section."""

    items: tuple[tuple[str, str], ...]

    def __init__(self, items: Any) -> None:
        pairs = items.items() if isinstance(items, dict) else items
        object.__setattr__(
            self, "items", tuple((neutral(str(k)), neutral(str(v))) for k, v in pairs)
        )


@dataclass(frozen=True)
class Table:
    """A small table in monospace; wide data belongs in a File (CSV)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __init__(self, headers: Any, rows: Any) -> None:
        object.__setattr__(self, "headers", tuple(neutral(str(h)) for h in headers))
        object.__setattr__(self, "rows", tuple(tuple(neutral(str(c)) for c in r) for r in rows))


TABLE_CELL_MAX = 40  # wider cells are cut: a monospace table must still fit a phone


def table_lines(table: Table) -> list[str]:
    """The table as aligned monospace lines (header, rule, rows), for every surface that
    shows it in a code block, so a table reads the same in Telegram and Slack."""
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        for i, cell in enumerate(row[: len(widths)]):
            widths[i] = min(max(widths[i], len(cell)), TABLE_CELL_MAX)

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c[:TABLE_CELL_MAX].ljust(widths[i]) for i, c in enumerate(cells[: len(widths)])
        ).rstrip()

    lines = [fmt(table.headers), "  ".join("─" * w for w in widths)] if table.headers else []
    return lines + [fmt(r) for r in table.rows]


@dataclass(frozen=True)
class Alert:
    level: Level
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", neutral(self.text))


@dataclass(frozen=True)
class File:
    filename: str
    data: bytes
    caption: str = ""
    mime: str = "application/octet-stream"

    def __post_init__(self) -> None:
        object.__setattr__(self, "caption", neutral(self.caption))


@dataclass(frozen=True)
class Image:
    """A PNG (charts, QR codes)."""

    data: bytes
    caption: str = ""
    filename: str = "image.png"

    def __post_init__(self) -> None:
        object.__setattr__(self, "caption", neutral(self.caption))


Block = Text | Fields | Table | Alert


@dataclass(frozen=True)
class Button:
    """A press runs ``action`` (``"<command>.<action>"`` or a command name) with ``params``.

    ``url`` buttons open a link instead and carry no token.
    """

    label: str
    action: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    style: Style = "default"
    url: str = ""
    args_text: str = ""
    confirmed: bool = False
    once: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", neutral(self.label))


@dataclass
class Ask:
    """The screen waits for a typed answer to step ``step`` of ``command``'s dialog.

    Each surface collects it through a channel that cannot be mistaken for a command:
    Slack opens a modal (``views.open``), Telegram in a group sends a ForceReply prompt
    and takes only its owner's reply to it. ``error`` is the problem with the previous
    answer (shown inline in a Slack modal); ``sent`` is told which message holds the
    prompt, so only a reply to that message is taken as the answer.
    """

    command: str
    step: str
    label: str
    secret: bool = False
    error: str = ""
    sent: Callable[[str], Awaitable[None]] | None = field(default=None, repr=False)

    @property
    def input_action(self) -> str:
        return f"{self.command}.input"

    @property
    def open_action(self) -> str:
        """The button action that shows the step again (Slack: and reopens the modal)."""
        return f"{self.command}.ask"


TokenIssuer = Callable[[Button], Awaitable[str]]
"""What a renderer calls for each non-URL button: the short server-side token it carries."""


@dataclass(frozen=True)
class Pager:
    """Prev/next (and page n/m) for a paginated list; each turn calls ``action``
    with ``params`` plus ``page``."""

    action: str
    page: int
    pages: int
    params: dict[str, Any] = field(default_factory=dict)

    def nav_row(self, lang: str) -> list[Button]:
        """[prev] [n/m] [next] as ordinary buttons (none when there is a single page), so
        every surface pages the same way and a page turn is authorized like any press."""
        if self.pages <= 1:
            return []

        def turn(label: str, page: int) -> Button:
            return Button(label, self.action, {**self.params, "page": page})

        row = [turn(i18n.t(lang, "pager.prev"), self.page - 1)] if self.page > 1 else []
        row.append(turn(f"{self.page}/{self.pages}", self.page))
        if self.page < self.pages:
            row.append(turn(i18n.t(lang, "pager.next"), self.page + 1))
        return row


@dataclass
class View:
    """One screen.

    ``title`` is shown bold on top; ``notice`` is a short toast for a button press
    (Telegram answerCallbackQuery text; ignored where there is no such thing); ``protect``
    asks the surface to prevent forwarding/saving (Telegram ``protect_content``);
    ``private`` means it may only be shown in a private chat/ephemeral message;
    ``edit`` (default for button presses) replaces the pressed message; ``ask`` means
    the screen waits for a typed dialog answer (:class:`Ask`); ``context_help=False``
    keeps the pipeline from adding its ❓ Help / 📘 Learn more (:mod:`chatops.context_help`).
    """

    title: str = ""
    blocks: list[Block] = field(default_factory=list)
    buttons: list[list[Button]] = field(default_factory=list)
    pager: Pager | None = None
    files: list[File] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    notice: str = ""
    protect: bool = False
    private: bool = False
    edit: bool | None = None
    ask: Ask | None = None
    context_help: bool = True

    def __post_init__(self) -> None:
        self.title = neutral(self.title)

    def add(self, *blocks: Block) -> View:
        self.blocks.extend(blocks)
        return self

    def row(self, *buttons: Button) -> View:
        if buttons:
            self.buttons.append(list(buttons))
        return self

    @classmethod
    def message(cls, text: str, *, title: str = "", level: Level | None = None) -> View:
        block: Block = Alert(level, text) if level else Text(text)
        return cls(title=title, blocks=[block])

    def plain_text(self) -> str:
        """Everything a reader would see, as plain text (tests, logs, fallbacks)."""
        parts = [self.title] if self.title else []
        for b in self.blocks:
            if isinstance(b, Text | Alert):
                parts.append(b.text)
            elif isinstance(b, Fields):
                parts.extend(f"{k}: {v}" for k, v in b.items)
            elif isinstance(b, Table):
                parts.append(" | ".join(b.headers))
                parts.extend(" | ".join(r) for r in b.rows)
        return "\n".join(parts)


def confirmation(title: str, text: str, confirm: Button, cancel: Button) -> View:
    """The standard "are you sure?" screen for destructive actions."""
    return View(title=title, blocks=[Alert("warning", text)], buttons=[[confirm, cancel]])
