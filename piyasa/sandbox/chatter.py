"""Offline market chatter, so demo mode and tests need no API key.

The fleet's real replies come from an LLM; this module stands in for it with templates ×
vocabulary × seeded random numbers. Output is meant to *look* like a group chat about BIST,
FX, crypto and macro, in Turkish or English, in a persona's style. It never claims to be
human and never tells anyone to buy or sell (the bots are bots; see DESIGN.md §7).

Everything is deterministic for a given seed and call sequence, which keeps tests stable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

TOPICS: tuple[str, ...] = ("bist", "fx", "crypto", "macro")
STYLES: tuple[str, ...] = ("temkinli", "iyimser", "teknik", "haberci")
MAX_CHARS = 400

# --------------------------------------------------------------------------- detection

_TOPIC_ALIASES: dict[str, str] = {
    "bist": "bist",
    "borsa": "bist",
    "hisse": "bist",
    "hisseler": "bist",
    "stocks": "bist",
    "equities": "bist",
    "xu100": "bist",
    "fx": "fx",
    "döviz": "fx",
    "doviz": "fx",
    "kur": "fx",
    "forex": "fx",
    "currency": "fx",
    "currencies": "fx",
    "altın": "fx",
    "altin": "fx",
    "gold": "fx",
    "crypto": "crypto",
    "kripto": "crypto",
    "cryptocurrency": "crypto",
    "coin": "crypto",
    "macro": "macro",
    "makro": "macro",
    "ekonomi": "macro",
    "economy": "macro",
    "faiz": "macro",
    "rates": "macro",
}

# Explicit "Konu: BIST" / "Topic: crypto" markers beat keyword counting.
_TOPIC_MARKER = re.compile(r"\b(?:konu|topic|tema|theme)\s*[:=]\s*([^\s,.;]+)", re.IGNORECASE)

_TOPIC_KEYWORDS: dict[str, tuple[str, ...]] = {
    "bist": (
        "bist",
        "bist100",
        "bist 100",
        "xu100",
        "borsa",
        "borsa istanbul",
        "thyao",
        "asels",
        "garan",
        "eregl",
        "akbnk",
        "kchol",
        "sise",
        "tuprs",
        "bimas",
        "hisse",
        "endeks",
        "stocks",
    ),
    "fx": (
        "usd/try",
        "eur/try",
        "eur/usd",
        "usdtry",
        "eurtry",
        "dolar",
        "euro",
        "döviz",
        "doviz",
        "kur",
        "altın",
        "altin",
        "ons",
        "gold",
        "forex",
        "lira",
        "parite",
        "dxy",
    ),
    "crypto": (
        "btc",
        "bitcoin",
        "eth",
        "ethereum",
        "kripto",
        "crypto",
        "altcoin",
        "sol",
        "solana",
        "stablecoin",
        "usdt",
        "halving",
    ),
    "macro": (
        "tcmb",
        "cbrt",
        "merkez bankası",
        "faiz",
        "enflasyon",
        "inflation",
        "fed",
        "ecb",
        "cds",
        "ppk",
        "büyüme",
        "gdp",
        "cari açık",
        "tüfe",
        "cpi",
        "interest rate",
        "tahvil",
        "bond",
        "10y",
        "abd 10 yıllık",
    ),
}
_KEYWORD_RES: dict[str, re.Pattern[str]] = {
    topic: re.compile(r"(?<![\w/])(?:" + "|".join(re.escape(k) for k in words) + r")(?![\w/])")
    for topic, words in _TOPIC_KEYWORDS.items()
}

_TR_HINTS = re.compile(
    r"\b(?:ve|bir|bu|için|değil|ama|çok|gibi|daha|sen|bugün|piyasa|yanıt|mesaj|olarak|ile|"
    r"günlük|haftalık|civarında|seviyesi|seviyesinde|görünüyor|sonrası|tarafında|şu|an|göre|"
    r"yönünde|bence|yok|var|lazım|dikkat|izleniyor)\b"
)
_EN_HINTS = re.compile(
    r"\b(?:the|and|is|are|for|not|but|you|today|market|reply|message|with|your|at|on|from|"
    r"last|month|week|day|looks|it's|around|average|support|resistance|higher|lower|up|down|"
    r"watching|after|move|ahead|of|in|now|here|eyes|no|could|be|will|good|one|other)\b"
)
_LANG_MARKER = re.compile(
    r"\b(?:language|lang|dil)\s*[:=]\s*(tr|en|turkish|english|türkçe|turkce|ingilizce)\b"
)
_LANG_PHRASE_EN = re.compile(r"\b(?:in english|ingilizce yaz|respond in english)\b")
_LANG_PHRASE_TR = re.compile(r"\b(?:in turkish|türkçe yaz|türkçe|turkce)\b")


def _fold(text: str) -> str:
    """Lower-case Turkish text without turning 'İ' into 'i̇' (a dotted i + combining dot)."""
    return text.replace("İ", "i").lower()


def detect_topic(text: str) -> str | None:
    """Return the topic a prompt is about, or None when nothing points at one.

    An explicit "Konu:/Topic:" marker wins; otherwise the topic with most keyword hits.
    """
    folded = _fold(text)
    for match in _TOPIC_MARKER.finditer(folded):
        topic = _TOPIC_ALIASES.get(match.group(1).strip("'\"*`"))
        if topic:
            return topic
    scores = {t: len(rx.findall(folded)) for t, rx in _KEYWORD_RES.items()}
    best = max(scores, key=lambda t: scores[t])
    return best if scores[best] else None


def detect_language(text: str) -> str | None:
    """Return "tr" or "en" from an explicit marker or, failing that, word statistics."""
    folded = _fold(text)
    marker = _LANG_MARKER.search(folded)
    if marker:
        return "en" if marker.group(1) in ("en", "english", "ingilizce") else "tr"
    if _LANG_PHRASE_EN.search(folded):
        return "en"
    if _LANG_PHRASE_TR.search(folded):
        return "tr"
    tr = len(_TR_HINTS.findall(folded)) + 2 * len(re.findall(r"[çğışöü]", folded))
    en = len(_EN_HINTS.findall(folded))
    if tr == en == 0:
        return None
    return "tr" if tr >= en else "en"


_STYLE_WORDS: dict[str, tuple[str, ...]] = {
    "temkinli": ("temkinli", "cautious", "careful", "ihtiyatlı", "skeptical", "şüpheci"),
    "iyimser": ("iyimser", "optimistic", "bullish", "pozitif", "hopeful"),
    "teknik": ("teknik", "technical", "chartist", "grafik", "analyst"),
    "haberci": ("haberci", "news", "reporter", "muhabir", "haber", "journalist"),
}
_NAME_RES = (
    re.compile(r"\b(?:persona|name|isim|adın|adin|ad)\s*[:=]\s*([^\s,.;\n]+)", re.IGNORECASE),
    re.compile(r"\byour name is\s+([^\s,.;\n]+)", re.IGNORECASE),
    re.compile(r"\bsenin adın\s+([^\s,.;\n]+)", re.IGNORECASE),
)
_REPLY_RE = re.compile(
    r"(?:reply to|respond to|yanıtla|yanıt ver|cevap ver|cevapla)[^:\n]*:\s*(.+)", re.IGNORECASE
)


def detect_persona(text: str) -> dict[str, str]:
    """Pull a persona's name and style out of a system prompt, as far as they are there."""
    persona: dict[str, str] = {}
    for rx in _NAME_RES:
        match = rx.search(text)
        if match:
            persona["name"] = match.group(1).strip("'\"*`")
            break
    folded = _fold(text)
    for style, words in _STYLE_WORDS.items():
        if any(re.search(r"\b" + re.escape(w) + r"\b", folded) for w in words):
            persona["style"] = style
            break
    return persona


# --------------------------------------------------------------------------- vocabulary

# (symbol, low, high, decimals, unit_tr, unit_en): plausible ranges, not market data.
_INSTRUMENTS: dict[str, list[tuple[str, float, float, int, str, str]]] = {
    "bist": [
        ("BIST 100", 9000, 11500, 0, " puan", " points"),
        ("THYAO", 250, 360, 2, " TL", " TRY"),
        ("ASELS", 60, 140, 2, " TL", " TRY"),
        ("GARAN", 100, 160, 2, " TL", " TRY"),
        ("EREGL", 22, 34, 2, " TL", " TRY"),
        ("AKBNK", 50, 80, 2, " TL", " TRY"),
        ("KCHOL", 150, 230, 2, " TL", " TRY"),
        ("TUPRS", 130, 200, 2, " TL", " TRY"),
        ("BIST Banka", 11000, 16000, 0, " puan", " points"),
    ],
    "fx": [
        ("USD/TRY", 38, 45, 4, "", ""),
        ("EUR/TRY", 42, 52, 4, "", ""),
        ("EUR/USD", 1.02, 1.20, 4, "", ""),
        ("ons altın", 2300, 3600, 0, " $", " USD"),
        ("gram altın", 3000, 4800, 0, " TL", " TRY"),
        ("DXY", 96, 108, 2, "", ""),
    ],
    "crypto": [
        ("BTC", 60000, 125000, 0, " $", " USD"),
        ("ETH", 2000, 4800, 0, " $", " USD"),
        ("SOL", 100, 260, 1, " $", " USD"),
        ("BTC dominansı", 52, 64, 1, "%", "%"),
        ("toplam kripto piyasa değeri", 2.1, 4.2, 2, " trilyon $", " trillion USD"),
    ],
    "macro": [
        ("TCMB politika faizi", 30, 50, 1, "%", "%"),
        ("yıllık enflasyon", 28, 45, 1, "%", "%"),
        ("Fed faizi", 3.5, 5.5, 2, "%", "%"),
        ("Türkiye 5 yıllık CDS", 240, 360, 0, " baz puan", " bps"),
        ("10 yıllık gösterge tahvil", 25, 35, 2, "%", "%"),
        ("ABD 10 yıllık", 3.6, 4.9, 2, "%", "%"),
    ],
}
_EN_NAMES = {
    "ons altın": "gold (oz)",
    "gram altın": "gram gold",
    "BTC dominansı": "BTC dominance",
    "toplam kripto piyasa değeri": "total crypto market cap",
    "TCMB politika faizi": "the CBRT policy rate",
    "yıllık enflasyon": "annual inflation",
    "Fed faizi": "the Fed funds rate",
    "Türkiye 5 yıllık CDS": "Turkey 5y CDS",
    "10 yıllık gösterge tahvil": "the 10y TRY benchmark",
    "ABD 10 yıllık": "the US 10y yield",
}
_DRIVERS = {
    "tr": {
        "bist": [
            "banka hisselerindeki satış",
            "yabancı girişi",
            "bilanço beklentileri",
            "temettü haberleri",
            "endeks ağırlıklılardaki alım",
            "kâr realizasyonu",
        ],
        "fx": [
            "TCMB'nin rezerv hamleleri",
            "DXY'deki hareket",
            "ihracatçı satışları",
            "carry trade iştahı",
            "Fed beklentileri",
            "jeopolitik haberler",
        ],
        "crypto": [
            "ETF akışları",
            "vadeli işlemlerdeki fonlama oranları",
            "balina cüzdanları",
            "stablecoin arzındaki artış",
            "regülasyon haberleri",
            "likidasyonlar",
        ],
        "macro": [
            "TCMB faiz kararı",
            "enflasyon verisi",
            "Fed tutanakları",
            "cari açık verisi",
            "PPK metnindeki ton",
            "büyüme rakamları",
        ],
    },
    "en": {
        "bist": [
            "bank selling",
            "foreign inflows",
            "earnings expectations",
            "dividend news",
            "buying in the heavyweights",
            "profit taking",
        ],
        "fx": [
            "CBRT reserve moves",
            "the dollar index",
            "exporter selling",
            "carry-trade appetite",
            "Fed expectations",
            "geopolitical headlines",
        ],
        "crypto": [
            "ETF flows",
            "perp funding rates",
            "whale wallets",
            "stablecoin supply growth",
            "regulatory headlines",
            "liquidations",
        ],
        "macro": [
            "the CBRT rate decision",
            "the inflation print",
            "the Fed minutes",
            "the current-account data",
            "the MPC statement's tone",
            "growth figures",
        ],
    },
}

_OBSERVATIONS = {
    "tr": [
        "{sym} {lvl} civarında, günlük {pct} {dir}.",
        "{sym} bugün {pct} {dir}, {lvl} seviyesi izleniyor.",
        "{sym} tarafında {driver} belirleyici görünüyor; şu an {lvl}.",
        "{driver} sonrası {sym} {pct} {dir}, işlem hacmi ortalamanın {vol}.",
        "{sym} haftalık bazda {wpct} {wdir}; {lvl} kritik bölge gibi duruyor.",
        "Gözüm {sym} üzerinde: {lvl} üstünde kalıcılık önemli, gün içi {pct} {dir}.",
        "{sym} ile {sym2} ayrıştı: biri {pct} {dir}, diğeri yatay.",
    ],
    "en": [
        "{sym} is around {lvl}, {pct} {dir} on the day.",
        "{sym} {dir} {pct} today, watching the {lvl} area.",
        "{sym} is being driven by {driver}; it's at {lvl} now.",
        "After {driver}, {sym} is {pct} {dir}, volume {vol} average.",
        "{sym} is {wpct} {wdir} on the week; {lvl} looks like the key zone.",
        "Eyes on {sym}: holding above {lvl} matters, {pct} {dir} intraday.",
        "{sym} and {sym2} diverged: one {dir} {pct}, the other flat.",
    ],
}
# Rates and inflation do not "rise 2% with high volume": macro gets its own phrasing.
_MACRO_OBSERVATIONS = {
    "tr": [
        "{sym} şu an {lvl}; piyasa {driver} öncesi {bp} baz puanlık bir değişimi fiyatlıyor.",
        "Gündem {driver}. {sym} {lvl} seviyesinde, beklenti {exp} yönünde.",
        "{sym} {lvl}; geçen aya göre {bp} baz puan {chg}.",
        "{driver} sonrası {sym2} ve {sym} birlikte izleniyor; {sym} {lvl}.",
    ],
    "en": [
        "{sym} is at {lvl}; the market prices a {bp} bp move ahead of {driver}.",
        "All eyes on {driver}. {sym} sits at {lvl}, expectations lean towards {exp}.",
        "{sym} at {lvl}, {bp} bp {chg} from last month.",
        "After {driver}, everyone is watching {sym2} and {sym}; {sym} is at {lvl}.",
    ],
}
_EXPECT = {"tr": ("sabit kalması", "indirim", "artış"), "en": ("a hold", "a cut", "a hike")}
_CHANGE = {"tr": ("arttı", "azaldı"), "en": ("higher", "lower")}

_STYLE_LINES = {
    "tr": {
        "temkinli": (
            [
                "Acele etmemek lazım.",
                "Volatilite yüksek, dikkat.",
                "Bence henüz net bir sinyal yok.",
            ],
            [
                "Risk yönetimi her şeyden önemli.",
                "Teyit gelmeden yorum zor.",
                "Ters bir haber akışı her şeyi değiştirebilir.",
            ],
        ),
        "iyimser": (
            ["Tablo fena değil.", "Bence momentum toparlanıyor.", "Güzel bir gün olabilir."],
            [
                "Trend şimdilik yukarı yönlü görünüyor.",
                "Alıcılar istekli gibi duruyor.",
                "Moraller yerinde.",
            ],
        ),
        "teknik": (
            ["Grafiğe bakınca:", "Teknik olarak:", "Saatlik grafikte:"],
            [
                "RSI {rsi} civarında.",
                "{ma} günlük ortalama {dir2} kesildi.",
                "Destek {sup}, direnç {res} gibi duruyor.",
                "MACD kesişimi izleniyor.",
            ],
        ),
        "haberci": (
            ["Kısa bilgi:", "Ekranlara düşen:", "Özetle:"],
            [
                "Gelişmeleri paylaşmaya devam ederim.",
                "Kaynak: piyasa ekranları.",
                "Detaylar netleştikçe güncellerim.",
            ],
        ),
    },
    "en": {
        "temkinli": (
            ["No rush here.", "Volatility is high, careful.", "I don't see a clean signal yet."],
            [
                "Risk management first.",
                "Hard to call without confirmation.",
                "One bad headline could flip this.",
            ],
        ),
        "iyimser": (
            [
                "Not a bad picture.",
                "Momentum looks like it's recovering.",
                "Could be a good session.",
            ],
            ["The trend looks up for now.", "Buyers seem willing.", "Sentiment is decent."],
        ),
        "teknik": (
            ["Looking at the chart:", "Technically:", "On the hourly chart:"],
            [
                "RSI is around {rsi}.",
                "Price crossed the {ma}-day average {dir2}.",
                "Support {sup}, resistance {res}.",
                "Watching for a MACD cross.",
            ],
        ),
        "haberci": (
            ["Quick update:", "On the screens:", "In short:"],
            [
                "Will keep sharing as it develops.",
                "Source: market screens.",
                "Will update when details firm up.",
            ],
        ),
    },
}
_REPLY_OPENERS = {
    "tr": [
        "{ref} konusunda katılıyorum.",
        "{ref} dediğin noktaya bir ek:",
        "{ref} için biraz farklı düşünüyorum.",
        "{ref} iyi yakalamışsın.",
    ],
    "en": [
        "Agree on {ref}.",
        "Adding to your point on {ref}:",
        "I see {ref} a bit differently.",
        "Good catch on {ref}.",
    ],
}
_GENERIC_REF = {
    "tr": ["bu", "bahsettiğin konu", "son mesajın"],
    "en": ["that", "your point", "your last message"],
}
_FOOTERS = {"tr": "(yatırım tavsiyesi değildir)", "en": "(not investment advice)"}
_DIRS = {"tr": ("yükselişte", "düşüşte"), "en": ("up", "down")}
_VOL = {"tr": ("üstünde", "altında"), "en": ("above", "below")}
_DIR2 = {"tr": ("yukarı", "aşağı"), "en": ("upwards", "downwards")}

# Words that point at an instrument, so a reply can stay on the instrument it answers.
_INSTRUMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "BIST 100": ("bist 100", "bist100", "xu100", "endeks", "borsa"),
    "ons altın": ("ons", "gold"),
    "gram altın": ("gram altın", "altın", "gram gold"),
    "USD/TRY": ("usd/try", "dolar", "dollar"),
    "EUR/TRY": ("eur/try", "euro"),
    "BTC": ("btc", "bitcoin"),
    "ETH": ("eth", "ethereum"),
    "SOL": ("sol", "solana"),
    "TCMB politika faizi": ("tcmb", "cbrt", "politika faizi", "policy rate"),
    "yıllık enflasyon": ("enflasyon", "inflation", "tüfe", "cpi"),
    "Fed faizi": ("fed",),
    "Türkiye 5 yıllık CDS": ("cds",),
    "10 yıllık gösterge tahvil": ("tahvil", "gösterge"),
    "ABD 10 yıllık": ("abd 10", "us 10y"),
}


def _mentions(text: str, words: Iterable[str]) -> int | None:
    """Position of the first whole-word mention of any of `words` in folded `text`."""
    hits = [
        m.start()
        for w in words
        for m in [re.search(r"(?<![\w/])" + re.escape(_fold(w)) + r"(?![\w/])", text)]
        if m
    ]
    return min(hits) if hits else None


_ALL_SYMBOLS = sorted(
    {inst[0] for insts in _INSTRUMENTS.values() for inst in insts}
    | {
        "BIST",
        "BTC",
        "ETH",
        "USD/TRY",
        "EUR/TRY",
        "TCMB",
        "Fed",
        "CDS",
        "altın",
        "gold",
        "Bitcoin",
        "Ethereum",
        "dolar",
        "dollar",
        "faiz",
        "enflasyon",
        "inflation",
    },
    key=len,
    reverse=True,
)


# --------------------------------------------------------------------------- generator


def _message_text(content: Any) -> str:
    """Flatten chat-completions content (a string or a list of parts) to text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _clip(text: str, limit: int = MAX_CHARS) -> str:
    """Cut at a word boundary so every message fits the promised 1–400 characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


class OfflineGenerator:
    """Templates × vocabulary × seeded numbers; a stand-in for the LLM with the same inputs."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    # ---- public API

    def generate(
        self,
        persona: dict[str, Any] | None,
        topic: str,
        history: list[str] | None = None,
        language: str = "tr",
        reply_to: str | None = None,
    ) -> str:
        """One chat message about `topic` in `language`, styled by `persona`."""
        rng = self._rng
        lang = language if language in ("tr", "en") else "tr"
        persona = persona or {}
        topic = topic if topic in TOPICS else (detect_topic(topic or "") or rng.choice(TOPICS))
        style = str(persona.get("style") or "")
        if style not in STYLES:
            style = detect_persona(style).get("style") or rng.choice(STYLES)

        parts: list[str] = []
        if reply_to:
            parts.append(self._reply_opener(reply_to, lang))
        openers, closers = _STYLE_LINES[lang][style]
        if not reply_to and rng.random() < 0.6:
            parts.append(rng.choice(openers))
        recent = self._recent_symbols([*(history or [])[-5:], reply_to or ""], topic)
        parts.append(self._observation(topic, lang, prefer=recent))
        if rng.random() < 0.7:
            parts.append(self._fill(rng.choice(closers), lang, topic))
        if persona.get("footer") or rng.random() < 0.15:
            parts.append(_FOOTERS[lang])
        text = _clip(" ".join(parts))
        return text or _FOOTERS[lang]

    def from_messages(self, messages: Sequence[dict[str, Any]]) -> str:
        """Reply to a chat-completions message list, inferring language, topic and persona.

        The system prompt is trusted for persona/topic/language; the conversation fills gaps.
        Falls back to Turkish and a random topic when the prompt says nothing usable.
        """
        system = "\n".join(
            _message_text(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )
        convo = [
            _message_text(m.get("content"))
            for m in messages
            if isinstance(m, dict) and m.get("role") not in ("system", "developer")
        ]
        everything = system + "\n" + "\n".join(convo)
        language = detect_language(system) or detect_language("\n".join(convo)) or "tr"
        topic = detect_topic(system) or detect_topic(everything) or self._rng.choice(TOPICS)
        persona = detect_persona(system)
        explicit = _REPLY_RE.search("\n".join(convo))
        reply_to = explicit.group(1).strip() if explicit else None
        history = [line for text in convo for line in text.splitlines() if line.strip()]
        return self.generate(persona, topic, history, language, reply_to)

    # ---- pieces

    def _number(self, low: float, high: float, decimals: int, lang: str) -> str:
        """A random level, written the way each language writes numbers (10.909,5 / 10,909.5)."""
        text = f"{self._rng.uniform(low, high):,.{decimals}f}"
        if lang == "tr":
            text = text.replace(",", "_").replace(".", ",").replace("_", ".")
        return text

    def _pct(self, max_abs: float, lang: str) -> tuple[str, bool]:
        """A percent move and its direction; Turkish writes the sign first (%1,25)."""
        num = self._number(0.1, max_abs, 2, lang)
        return (f"%{num}" if lang == "tr" else f"{num}%"), self._rng.random() < 0.55

    def _level(self, inst: tuple[str, float, float, int, str, str], lang: str) -> str:
        num = self._number(inst[1], inst[2], inst[3], lang)
        unit = inst[4] if lang == "tr" else inst[5]
        if unit == "%":
            return f"%{num}" if lang == "tr" else f"{num}%"
        return num + unit

    def _observation(self, topic: str, lang: str, prefer: list[str]) -> str:
        rng = self._rng
        insts = _INSTRUMENTS[topic]
        preferred = [i for i in insts if i[0] in prefer]
        inst = rng.choice(preferred or insts)
        other = rng.choice([i for i in insts if i is not inst])
        pct, up = self._pct(4.5 if topic == "crypto" else 2.5, lang)
        wpct, wup = self._pct(9.0 if topic == "crypto" else 5.0, lang)
        fields = {
            "sym": self._name(inst[0], lang),
            "sym2": self._name(other[0], lang),
            "lvl": self._level(inst, lang),
            "pct": pct,
            "dir": _DIRS[lang][0 if up else 1],
            "wpct": wpct,
            "wdir": _DIRS[lang][0 if wup else 1],
            "vol": _VOL[lang][rng.randrange(2)],
            "driver": rng.choice(_DRIVERS[lang][topic]),
            "bp": rng.choice((25, 50, 75, 100, 150, 250)),
            "exp": rng.choice(_EXPECT[lang]),
            "chg": rng.choice(_CHANGE[lang]),
        }
        templates = _MACRO_OBSERVATIONS if topic == "macro" else _OBSERVATIONS
        text = rng.choice(templates[lang]).format(**fields)
        return text[0].upper() + text[1:]

    def _fill(self, line: str, lang: str, topic: str) -> str:
        rng = self._rng
        inst = rng.choice(_INSTRUMENTS[topic])
        mid = (inst[1] + inst[2]) / 2
        sup = self._number(inst[1], mid, inst[3], lang)
        res = self._number(mid, inst[2], inst[3], lang)
        return line.format(
            rsi=rng.randint(28, 74),
            ma=rng.choice((20, 50, 100, 200)),
            dir2=_DIR2[lang][rng.randrange(2)],
            sup=sup,
            res=res,
        )

    def _reply_opener(self, reply_to: str, lang: str) -> str:
        folded = _fold(reply_to)
        found = {s: pos for s in _ALL_SYMBOLS if (pos := _mentions(folded, [s])) is not None}
        if found:
            ref = self._name(min(found, key=lambda s: (found[s], -len(s))), lang)
        else:
            words = [w.strip(".,!?;:\"'") for w in reply_to.split()]
            words = [w for w in words if len(w) > 4]
            ref = f"“{words[0]}”" if words else self._rng.choice(_GENERIC_REF[lang])
        return self._rng.choice(_REPLY_OPENERS[lang]).format(ref=ref[:40])

    @staticmethod
    def _name(symbol: str, lang: str) -> str:
        return _EN_NAMES.get(symbol, symbol) if lang == "en" else symbol

    @staticmethod
    def _recent_symbols(texts: Iterable[str], topic: str) -> list[str]:
        """Instruments of `topic` the conversation just mentioned, to stay on subject."""
        folded = _fold(" ".join(texts))
        return [
            inst[0]
            for inst in _INSTRUMENTS[topic]
            if _mentions(folded, _INSTRUMENT_ALIASES.get(inst[0], (inst[0],))) is not None
        ]
