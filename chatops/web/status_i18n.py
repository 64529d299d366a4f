"""Status page strings in Turkish and English.

Kept here until the chat-ops catalogs in ``chatops/locales/`` take them over.
"""

from __future__ import annotations

from collections.abc import Mapping

LANGS = ("tr", "en")

STRINGS: Mapping[str, Mapping[str, str]] = {
    "tr": {
        "title": "Piyasa durum",
        "overall.healthy": "Tüm sistemler çalışıyor",
        "overall.warning": "Bazı sistemlerde yavaşlama veya uyarı var",
        "overall.critical": "Kritik sorun var",
        "overall.unknown": "Durumun bir kısmı bilinmiyor",
        "state.healthy": "Sağlıklı",
        "state.warning": "Uyarı",
        "state.critical": "Kritik",
        "state.unknown": "Bilinmiyor",
        "state.none": "Kayıt yok",
        "component.runtime": "Bot filosu",
        "component.database": "Veritabanı",
        "component.redis": "Redis",
        "component.telegram": "Telegram",
        "component.slack": "Slack",
        "component.llm": "LLM sağlayıcı",
        "component.scheduler": "Zamanlayıcı",
        "component.targets": "İzlenen hedefler",
        "component.host": "Sunucu",
        "component.instances": "Örnekler",
        "components": "Bileşenler",
        "uptime": "Son {days} gün",
        "uptime.percent": "%{percent} erişilebilir",
        "uptime.nodata": "veri yok",
        "incidents": "Son olaylar",
        "incidents.none": "Son {days} günde olay yok.",
        "incidents.blips": "Bir dakikadan kısa süren, listelenmeyen sorunlar: {counts}",
        "notify.undelivered": "{n} bildirim henüz iletilemedi.",
        "incident.ongoing": "sürüyor",
        "incident.since": "başlangıç",
        "incident.until": "bitiş",
        "checked": "Son kontrol: {when} UTC",
        "checked.never": "Henüz kontrol edilmedi",
        "refresh": "Sayfa 30 saniyede bir yenilenir.",
        "legend": "Her çubuk bir gün (UTC); renk o günün en kötü durumu.",
        "ago": "{n} önce",
        "summary.not running": "çalışmıyor",
        "summary.not configured (in-process cache)": "yapılandırılmamış (işlem içi önbellek)",
        "summary.not checked yet": "henüz kontrol edilmedi",
        "summary.no bots": "bot yok",
        "summary.paused": "duraklatıldı",
        "summary.stopped": "durdu",
        "summary.no LLM activity reported": "LLM etkinliği bildirilmedi",
    },
    "en": {
        "title": "Piyasa status",
        "overall.healthy": "All systems operational",
        "overall.warning": "Some systems are degraded",
        "overall.critical": "Major problem",
        "overall.unknown": "Part of the state is unknown",
        "state.healthy": "Healthy",
        "state.warning": "Warning",
        "state.critical": "Critical",
        "state.unknown": "Unknown",
        "state.none": "No data",
        "component.runtime": "Bot fleet",
        "component.database": "Database",
        "component.redis": "Redis",
        "component.telegram": "Telegram",
        "component.slack": "Slack",
        "component.llm": "LLM provider",
        "component.scheduler": "Scheduler",
        "component.targets": "Monitoring targets",
        "component.host": "Host",
        "component.instances": "Instances",
        "components": "Components",
        "uptime": "Last {days} days",
        "uptime.percent": "{percent}% available",
        "uptime.nodata": "no data",
        "incidents": "Recent incidents",
        "incidents.none": "No incidents in the last {days} days.",
        "incidents.blips": "Problems shorter than a minute, not listed: {counts}",
        "notify.undelivered": "{n} notification(s) could not be delivered yet.",
        "incident.ongoing": "ongoing",
        "incident.since": "started",
        "incident.until": "ended",
        "checked": "Last checked: {when} UTC",
        "checked.never": "Not checked yet",
        "refresh": "This page refreshes every 30 seconds.",
        "legend": "Each bar is one day (UTC); its colour is the day's worst state.",
        "ago": "{n} ago",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    """The string for ``key`` in ``lang`` (English, then the key itself, as fallbacks)."""
    text = STRINGS.get(lang, STRINGS["en"]).get(key) or STRINGS["en"].get(key) or key
    return text.format(**values) if values else text


def summary_text(lang: str, summary: str) -> str:
    """Fixed probe phrases translated; figures-only summaries pass through unchanged."""
    key = f"summary.{summary}"
    text = STRINGS.get(lang, STRINGS["en"]).get(key)
    return text if text else summary


def component_label(lang: str, name: str) -> str:
    key = f"component.{name}"
    label = t(lang, key)
    return name if label == key else label


def negotiate(query_lang: str | None, accept_language: str | None, default: str) -> str:
    """``?lang=`` wins, then the best Accept-Language match, then the configured default."""
    if query_lang and query_lang.lower()[:2] in LANGS:
        return query_lang.lower()[:2]
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        code = tag.strip().lower()[:2]
        if code in LANGS and q > 0 and (best is None or q > best[0]):
            best = (q, code)
    if best:
        return best[1]
    return default if default in LANGS else "tr"
