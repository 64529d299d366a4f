"""View -> Block Kit, within Slack's limits: 50 blocks per message (more become further
messages), section text <= 3000 characters, 10 fields per section, 25 elements per actions
block, button value <= 2000 (ours are 18-byte tokens)."""

from __future__ import annotations

from typing import Any

from chatops.views import Alert, Button, Fields, Table, Text, TokenIssuer, View, table_lines

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
ALERT_ICON = {
    "info": ":information_source:",
    "success": ":white_check_mark:",
    "warning": ":warning:",
    "error": ":no_entry:",
}


def esc(text: str) -> str:
    """Slack's three control characters; everything else is shown as typed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _chunks(text: str, limit: int) -> list[str]:
    """Cut escaped text at line (else space) boundaries, never inside an &entity;."""
    out: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
            amp = text.rfind("&", cut - 6, cut)
            if amp != -1 and ";" not in text[amp:cut]:
                cut = amp
        out.append(text[:cut])
        text = text[cut:].lstrip("\n")
    out.append(text)
    return out


def _section(mrkdwn: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in _chunks(mrkdwn, MAX_SECTION)
        if part.strip()
    ]


def _wrapped(text: str, wrap: str, limit: int = MAX_SECTION) -> list[dict[str, Any]]:
    budget = limit - 2 * len(wrap) - 2
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{wrap}{part}{wrap}"}}
        for part in _chunks(esc(text), budget)
        if part.strip()
    ]


def text_blocks(view: View) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if view.title:
        if len(view.title) <= 150:
            blocks.append({"type": "header", "text": {"type": "plain_text", "text": view.title}})
        else:
            blocks += _wrapped(view.title, "*")
    for block in view.blocks:
        if isinstance(block, Text):
            if block.style == "plain":
                blocks += _section(esc(block.text))
            elif block.style in ("code", "pre"):
                blocks += _wrapped(block.text, "```")
            else:
                blocks += _wrapped(block.text, "*" if block.style == "bold" else "_")
        elif isinstance(block, Alert):
            blocks += _section(f"{ALERT_ICON.get(block.level, '')} {esc(block.text)}".strip())
        elif isinstance(block, Fields):
            items = [f"*{esc(k)}*\n{esc(v)}"[:MAX_FIELD] for k, v in block.items]
            for i in range(0, len(items), MAX_FIELDS):
                blocks.append(
                    {
                        "type": "section",
                        "fields": [
                            {"type": "mrkdwn", "text": t} for t in items[i : i + MAX_FIELDS]
                        ],
                    }
                )
        elif isinstance(block, Table):
            blocks += _wrapped("\n".join(table_lines(block)), "```")
    return blocks


async def action_blocks(view: View, lang: str, issue: TokenIssuer) -> list[dict[str, Any]]:
    rows = [list(r) for r in view.buttons]
    if view.ask is not None:  # (re)opens the step's modal: typed answers never go elsewhere
        from chatops import i18n

        label = i18n.t(lang, "dialog.answer_button")
        rows.insert(0, [Button(label, action=view.ask.open_action, style="primary")])
    if view.pager and (nav := view.pager.nav_row(lang)):
        rows.append(nav)
    blocks = []
    n = 0
    for row in rows:
        for i in range(0, len(row), MAX_ACTIONS):
            elements = []
            for button in row[i : i + MAX_ACTIONS]:
                n += 1
                el: dict[str, Any] = {
                    "type": "button",
                    "text": {"type": "plain_text", "text": button.label[:MAX_BUTTON_TEXT]},
                    "action_id": f"piyasa:{n}",
                }
                if button.url:
                    el["url"] = button.url
                else:
                    el["value"] = await issue(button)
                if button.style in ("primary", "danger"):
                    el["style"] = button.style
                elements.append(el)
            blocks.append({"type": "actions", "elements": elements})
    return blocks


async def render(view: View, lang: str, issue: TokenIssuer) -> list[dict[str, Any]]:
    """Messages (``{"text", "blocks"}``) for one view; buttons stay on the last message."""
    body = text_blocks(view)
    actions = await action_blocks(view, lang, issue)
    messages: list[list[dict[str, Any]]] = []
    for i in range(0, max(len(body), 1), MAX_BLOCKS):
        messages.append(body[i : i + MAX_BLOCKS])
    if actions:
        if len(messages[-1]) + len(actions) > MAX_BLOCKS:
            messages.append([])
        messages[-1].extend(actions[:MAX_BLOCKS])
    fallback = view.plain_text()[:3000] or " "
    return [{"text": fallback, "blocks": blocks} for blocks in messages if blocks]


# -- modals: how a dialog step collects a typed answer on Slack ----------------------------
# Modal view object (docs.slack.dev/reference/views/modal-views): title, submit and close
# are plain_text of at most 24 characters, submit is required with an input block, at most
# 100 blocks, private_metadata at most 3000 characters, callback_id at most 255;
# plain_text_input max_length is at most 3000.

MODAL_CALLBACK = "piyasa:dialog"
MODAL_BLOCK = "answer"  # block_id of the input block: view_submission errors name it
MODAL_INPUT = "value"  # action_id of its plain_text_input
MODAL_TITLE_MAX = 24
MODAL_BLOCKS_MAX = 100
INPUT_LABEL_MAX = 2000
INPUT_MAX_LENGTH = 3000


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": (text.strip() or "Piyasa")[:limit]}


def modal(view: View, token: str, lang: str) -> dict[str, Any]:
    """The modal asking for ``view.ask``: the step's text (never an answer: nothing typed
    is put back into a view, no ``initial_value``) and one plain_text_input. ``token``
    (a server-side button token) goes into ``private_metadata``."""
    from chatops import i18n

    assert view.ask is not None
    # the problem with the last answer is shown under the input (response_action errors)
    shown = [b for b in view.blocks if not (isinstance(b, Alert) and b.level == "error")]
    body = text_blocks(View(blocks=shown))
    body = body[: MODAL_BLOCKS_MAX - 1]
    body.append(
        {
            "type": "input",
            "block_id": MODAL_BLOCK,
            "label": _plain(view.ask.label, INPUT_LABEL_MAX),
            "element": {
                "type": "plain_text_input",
                "action_id": MODAL_INPUT,
                "max_length": INPUT_MAX_LENGTH,
                "focus_on_load": True,
            },
        }
    )
    return {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "private_metadata": token,
        "title": _plain(view.title, MODAL_TITLE_MAX),
        "submit": _plain(i18n.t(lang, "dialog.submit"), MODAL_TITLE_MAX),
        "close": _plain(i18n.t(lang, "dialog.close"), MODAL_TITLE_MAX),
        "blocks": body,
    }
