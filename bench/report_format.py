"""Formatting helpers of the benchmark report (bench/report.py, bench/report_sections.py)."""

from __future__ import annotations


def f(s: dict | None, digits: int = 2, unit: str = "") -> str:
    """'1.23 (1.20–1.30)' from a stats dict."""
    if not s:
        return "–"
    fmt = f"{{:,.{digits}f}}"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{fmt.format(s['median'])}{unit}"
    return f"{fmt.format(s['median'])}{unit} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def _foreign(sec: dict) -> str:
    share = sec.get("_foreign_share")
    return "" if share is None else f" Other processes used {share:.0%} of the machine during this section."


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)
