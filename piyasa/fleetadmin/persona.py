"""A fleet bot's persona: which fields it has, how long each may be, how text becomes one.

The persona is the JSON in ``bots.persona``; the runtime reads ``name``, ``style``,
``stances``, ``footer``, ``topics`` and ``language`` (``piyasa.runtime.llm.build_prompt``,
``finish_text``, the planner's topic choice) and the prompt carries ``tone``, ``risk``,
``expertise`` and ``phrases`` too. Every write path (chat, shell, the Add bot dialog)
goes through :func:`validate_persona` or :func:`parse_field`, so what the fleet reads is
always in shape. Errors are :class:`PersonaError` with a catalog key
(``bots.err.persona.*`` in ``chatops/locales/*/bots.json``) and its parameters, so each
surface words them in the user's language; ``str(error)`` is the English sentence for
the shell.

Topic names are at most 32 characters because ``messages.topic`` is VARCHAR(32).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["text", "choice", "list", "map"]


@dataclass(frozen=True)
class FieldSpec:
    """One persona field: its kind, the longest text (per item for lists and maps), how
    many items at most, and the allowed values of a choice."""

    kind: Kind
    max_len: int
    max_items: int = 0
    choices: tuple[str, ...] = ()
    key_max_len: int = 0  # maps: the longest instrument name
    required: bool = False


RISKS = ("cautious", "balanced", "bold")
LANGUAGES = ("tr", "en")

PERSONA_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("text", 64, required=True),
    "tone": FieldSpec("text", 80),
    "style": FieldSpec("text", 200),
    "risk": FieldSpec("choice", 16, choices=RISKS),
    "expertise": FieldSpec("text", 200),
    "phrases": FieldSpec("list", 80, max_items=8),
    "topics": FieldSpec("list", 32, max_items=12),
    "stances": FieldSpec("map", 120, max_items=12, key_max_len=24),
    "footer": FieldSpec("text", 120),
}
"""Field -> spec, in the order the card shows them. ``language`` (tr/en) is kept too."""

EXTRA_FIELDS: dict[str, FieldSpec] = {"language": FieldSpec("choice", 2, choices=LANGUAGES)}

_MESSAGES = {
    "bots.err.persona.unknown_field": "{field} is not a persona field",
    "bots.err.persona.too_long": "{field} is {length} characters long; at most {max}",
    "bots.err.persona.item_too_long": "an item of {field} is {length} characters; at most {max}",
    "bots.err.persona.too_many": "{field} has {count} items; at most {max}",
    "bots.err.persona.empty": "{field} cannot be empty",
    "bots.err.persona.topics_empty": "topics cannot be empty: give at least one (e.g. bist, fx)",
    "bots.err.persona.bad_choice": "{field} must be one of {choices}",
    "bots.err.persona.bad_stance": "write stances as INSTRUMENT: stance; e.g. USDTRY: bearish",
    "bots.err.persona.bad_type": "{field} has the wrong shape",
}


class PersonaError(ValueError):
    """A persona value that cannot be stored; nothing was changed.

    ``field`` names the field, ``catalog_key`` the translatable message
    (``bots.err.persona.*``) and ``params`` its placeholders.
    """

    def __init__(self, field: str, catalog_key: str, params: Mapping[str, Any] | None = None):
        self.field = field
        self.catalog_key = catalog_key
        self.params = {"field": field, **dict(params or {})}
        super().__init__(_MESSAGES.get(catalog_key, catalog_key).format(**self.params))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _clean_text(field: str, value: Any, spec: FieldSpec, *, item: bool = False) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise PersonaError(field, "bots.err.persona.bad_type")
    text = _CONTROL.sub("", str(value)).strip()
    limit = spec.max_len
    if len(text) > limit:
        key = "bots.err.persona.item_too_long" if item else "bots.err.persona.too_long"
        raise PersonaError(field, key, {"length": len(text), "max": limit})
    return text


def _clean(field: str, value: Any, spec: FieldSpec) -> Any:
    if spec.kind == "text":
        text = _clean_text(field, value, spec)
        if spec.required and not text:
            raise PersonaError(field, "bots.err.persona.empty")
        return text
    if spec.kind == "choice":
        text = _clean_text(field, value, spec).lower()
        if text not in spec.choices:
            raise PersonaError(
                field, "bots.err.persona.bad_choice", {"choices": ", ".join(spec.choices)}
            )
        return text
    if spec.kind == "list":
        if not isinstance(value, list | tuple):
            raise PersonaError(field, "bots.err.persona.bad_type")
        items: list[str] = []
        for raw in value:
            text = _clean_text(field, raw, spec, item=True)
            if field == "topics":
                text = text.lower()
            if text and text not in items:
                items.append(text)
        if field == "topics" and not items:
            raise PersonaError(field, "bots.err.persona.topics_empty")
        if len(items) > spec.max_items:
            raise PersonaError(
                field, "bots.err.persona.too_many", {"count": len(items), "max": spec.max_items}
            )
        return items
    # map: instrument -> stance
    if not isinstance(value, Mapping):
        raise PersonaError(field, "bots.err.persona.bad_type")
    out: dict[str, str] = {}
    key_spec = FieldSpec("text", spec.key_max_len)
    for k, v in value.items():
        key = _clean_text(field, k, key_spec, item=True).upper()
        stance = _clean_text(field, v, spec, item=True)
        if not key or not stance:
            raise PersonaError(field, "bots.err.persona.bad_stance")
        out[key] = stance
    if len(out) > spec.max_items:
        raise PersonaError(
            field, "bots.err.persona.too_many", {"count": len(out), "max": spec.max_items}
        )
    return out


def spec_of(field: str) -> FieldSpec:
    """The spec of a persona field; PersonaError for a name that is none."""
    spec = PERSONA_FIELDS.get(field) or EXTRA_FIELDS.get(field)
    if spec is None:
        raise PersonaError(field, "bots.err.persona.unknown_field")
    return spec


def validate_field(field: str, value: Any) -> Any:
    """One field's value cleaned (text stripped, topics lower-cased, instruments
    upper-cased, duplicates dropped), or PersonaError. Empty text clears an optional field."""
    return _clean(field, value, spec_of(field))


def validate_persona(data: dict[str, Any]) -> dict[str, Any]:
    """The cleaned persona, or PersonaError naming the first bad field.

    Known fields (:data:`PERSONA_FIELDS`, ``language``) are checked and cleaned; an empty
    optional one is dropped; ``name`` is required; keys the fleet does not know are kept
    as they are (another version may use them). ``data`` is not modified.
    """
    if not isinstance(data, Mapping):
        raise PersonaError("persona", "bots.err.persona.bad_type")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in PERSONA_FIELDS or key in EXTRA_FIELDS:
            cleaned = validate_field(key, value)
            if cleaned not in ("", [], {}):
                out[key] = cleaned
        else:
            out[key] = value
    if "name" not in out:
        raise PersonaError("name", "bots.err.persona.empty")
    return out


def parse_field(field: str, text: str) -> Any:
    """A field's value from what a user typed, validated (PersonaError otherwise).

    Lists: comma or newline separated (``bist, fx``; phrases by ``;`` or newlines, since a
    phrase may hold a comma). Stances: ``USDTRY: bearish; BIST100: bullish`` (``;`` or
    newlines between them). Text and choices: as typed; ``-`` alone clears an optional
    text field.
    """
    spec = spec_of(field)
    raw = (text or "").strip()
    if spec.kind == "list":
        sep = r"[;\n]" if field == "phrases" else r"[,;\n]"
        return validate_field(field, [p for p in re.split(sep, raw) if p.strip()])
    if spec.kind == "map":
        entries: dict[str, str] = {}
        for part in re.split(r"[;\n]", raw):
            if not part.strip():
                continue
            name, sep_, stance = part.partition(":")
            if not sep_:
                raise PersonaError(field, "bots.err.persona.bad_stance")
            entries[name.strip()] = stance.strip()
        return validate_field(field, entries)
    if raw == "-" and not spec.required and spec.kind == "text":
        return ""
    return validate_field(field, raw)


def show_field(field: str, value: Any) -> str:
    """A field's value as one line for a card or the shell, in the form :func:`parse_field`
    reads back ("" when unset)."""
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ("; " if field == "phrases" else ", ").join(str(v) for v in value)
    return "" if value is None else str(value)


TEMPLATES: dict[str, dict[str, Any]] = {
    "analyst": {
        "tone": "calm, precise",
        "style": "teknik",
        "risk": "cautious",
        "expertise": "technical analysis of BIST stocks and indices",
        "topics": ["bist", "macro"],
        "footer": "Yatırım tavsiyesi değildir.",
        "language": "tr",
    },
    "fx": {
        "tone": "measured",
        "style": "temkinli",
        "risk": "balanced",
        "expertise": "currencies, rates and the central bank",
        "topics": ["fx", "macro"],
        "footer": "Yatırım tavsiyesi değildir.",
        "language": "tr",
    },
    "crypto": {
        "tone": "upbeat",
        "style": "iyimser",
        "risk": "bold",
        "expertise": "crypto markets and on-chain news",
        "topics": ["crypto"],
        "footer": "Not investment advice.",
        "language": "en",
    },
}
"""Starting personas of the Add bot dialog (the bot's name is added from getMe)."""
