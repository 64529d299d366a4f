"""A diagnosis as a Markdown document (chat export, ``piyasa diagnose --markdown FILE``).

Shape::

    # Piyasa diagnosis — 2026-11-30 22:40 UTC
    **Health score: 65/100** (100 − 25 per critical issue − 10 per warning)
    ## 1. 🔴 Telegram: 429 Too Many Requests  (`tg-429`)
    **Cause** … **Impact** … **Solution** 1. … **Evidence** - … **Fix**: lower_scale
    ## Ignored for 24 h …

Evidence lines were redacted where they were made (log excerpts, fleet errors); they are
redacted again here with the process's known secrets before they leave the machine.
"""

from __future__ import annotations

from piyasa.help.diagnose import PENALTY, Issue, Report
from piyasa.logs import REDACTOR

ICON = {"critical": "🔴", "warning": "🟠"}
WORDS = {
    "en": {
        "title": "Piyasa diagnosis",
        "score": "Health score",
        "how": "100 − {c} per critical issue − {w} per warning, never below 0",
        "none": "No problems found.",
        "cause": "Cause",
        "impact": "Impact",
        "solution": "Solution",
        "evidence": "Evidence",
        "fix": "Automatic fix",
        "manual": "No automatic fix: follow the steps.",
        "unnamed": "Unrecognised problem",
        "ignored": "Ignored for 24 h",
        "looked": "Looked at",
    },
    "tr": {
        "title": "Piyasa teşhisi",
        "score": "Sağlık puanı",
        "how": "100 − kritik sorun başına {c} − uyarı başına {w}, en az 0",
        "none": "Sorun bulunamadı.",
        "cause": "Neden",
        "impact": "Etkisi",
        "solution": "Çözüm",
        "evidence": "Kanıt",
        "fix": "Otomatik düzeltme",
        "manual": "Otomatik düzeltme yok: adımları izleyin.",
        "unnamed": "Tanınmayan sorun",
        "ignored": "24 saat yok sayılanlar",
        "looked": "İncelenen",
    },
}


def how_scored(lang: str) -> str:
    w = WORDS.get(lang, WORDS["en"])
    return w["how"].format(c=PENALTY["critical"], w=PENALTY["warning"])


def title_of(issue: Issue, lang: str) -> str:
    entry = issue.entry
    if entry is None:
        return f"{WORDS.get(lang, WORDS['en'])['unnamed']}: {issue.key}"
    return entry.w(lang).title


def _issue(n: int, issue: Issue, lang: str) -> list[str]:
    w = WORDS.get(lang, WORDS["en"])
    entry = issue.entry
    head = f"## {n}. {ICON[issue.severity]} {title_of(issue, lang)}"
    out = [head + (f"  (`{entry.id}`)" if entry else ""), ""]
    if entry is not None:
        words = entry.w(lang)
        out += [f"**{w['cause']}**: {words.cause}", "", f"**{w['impact']}**: {words.symptoms}"]
        out += ["", f"**{w['solution']}**:", ""]
        out += [f"{i}. {s}" for i, s in enumerate(words.steps, 1)]
        fix = f"**{w['fix']}**: `{entry.fix}`" if entry.fix else f"*{w['manual']}*"
        out += ["", fix]
    out += ["", f"**{w['evidence']}**:", ""]
    out += ["- `" + REDACTOR(e).replace("`", "'") + "`" for e in issue.evidence]
    return [*out, ""]


def to_markdown(report: Report, lang: str = "en") -> str:
    """The whole report in ``lang`` ("tr" or "en") as Markdown (see the module docstring)."""
    w = WORDS.get(lang, WORDS["en"])
    lines = [
        f"# {w['title']} — {report.taken_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"**{w['score']}: {report.score}/100** ({how_scored(lang)})",
        "",
        f"{w['looked']}: " + ", ".join(f"{k} {v}" for k, v in report.counts.items()),
        "",
    ]
    if not report.issues:
        lines += [w["none"], ""]
    for n, issue in enumerate(report.issues, 1):
        lines += _issue(n, issue, lang)
    if report.ignored:
        lines += [f"## {w['ignored']}", ""]
        lines += [f"- {title_of(i, lang)} (`{i.key}`)" for i in report.ignored]
    return "\n".join(lines).rstrip() + "\n"
