"""A password strength hint: length and variety, plus the commonest patterns.

This is advice, not policy: the only hard rule is the user service's minimum length.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from piyasa.admin.users import MIN_PASSWORD_LEN

COMMON = (
    "password",
    "parola",
    "sifre",
    "şifre",
    "qwerty",
    "123456",
    "admin",
    "piyasa",
    "letmein",
    "welcome",
    "iloveyou",
)


@dataclass(frozen=True)
class Strength:
    score: int  # 0 (unusable) .. 4 (strong)
    label: str  # too_short | weak | fair | good | strong
    hints: tuple[str, ...]  # hint codes: add_length, add_variety, common_word, repeated


def strength(password: str, username: str = "") -> Strength:
    if len(password) < MIN_PASSWORD_LEN:
        return Strength(0, "too_short", ("add_length",))
    pools = 0
    for pattern, size in (("[a-z]", 26), ("[A-Z]", 26), ("[0-9]", 10), (r"[^A-Za-z0-9]", 33)):
        if re.search(pattern, password):
            pools += size
    bits = len(password) * math.log2(max(pools, 2))
    hints: list[str] = []
    low = password.lower()
    if any(w in low for w in COMMON) or (username and username.lower() in low):
        bits -= 30
        hints.append("common_word")
    if re.search(r"(.)\1\1", password) or len(set(password)) < len(password) / 2:
        bits -= 15
        hints.append("repeated")
    if pools <= 36:
        hints.append("add_variety")
    if bits < 50:
        score, label = 1, "weak"
        hints.append("add_length")
    elif bits < 70:
        score, label = 2, "fair"
    elif bits < 90:
        score, label = 3, "good"
    else:
        score, label = 4, "strong"
    return Strength(score, label, tuple(dict.fromkeys(hints)))


HINT_TEXT_EN = {
    "add_length": f"use at least {MIN_PASSWORD_LEN} characters; a few unrelated words are easy",
    "add_variety": "mix upper and lower case, digits and symbols",
    "common_word": "avoid common words and your username",
    "repeated": "avoid repeated characters",
}


def describe_en(s: Strength) -> str:
    """One line for the CLI (which speaks English, like the rest of the CLI)."""
    text = f"strength: {s.label}"
    if s.hints:
        text += " — " + "; ".join(HINT_TEXT_EN[h] for h in s.hints)
    return text
