"""The configuration reference of README.md, generated from `Settings` (config.keys_with_help).

    python -m playlistgen.config_docs [README.md]    # rewrite the table between the markers

tests/test_docs.py fails when the README's table differs from :func:`markdown_table`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from .config import keys_with_help, sections

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"


def _default(value: Any) -> str:
    if value == "":
        return '`""`'
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return f"`{text}`"


def _limits(section: str, name: str) -> str:
    cls = sections()[section]
    meta = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
    notes = []
    if meta.get("choices"):
        notes.append("one of " + ", ".join(f"`{c}`" for c in meta["choices"]))
    if meta.get("min") is not None and meta.get("max") is not None:
        notes.append(f"{meta['min']:g}–{meta['max']:g}")
    elif meta.get("min") is not None:
        notes.append(f"≥ {meta['min']:g}")
    return f" ({'; '.join(notes)})" if notes else ""


def markdown_table() -> str:
    """One table: key, default, what it does (with its choices or limits)."""
    rows = ["| key | default | what it does |", "|---|---|---|"]
    for key, default, help_text in keys_with_help():
        section, name = key.split(".", 1)
        text = (help_text + _limits(section, name)).replace("|", "\\|")
        rows.append(f"| `{key}` | {_default(default)} | {text} |")
    return "\n".join(rows)


def block() -> str:
    return f"{START}\n{markdown_table()}\n{END}"


def readme_block(text: str) -> str | None:
    m = re.search(re.escape(START) + r".*?" + re.escape(END), text, re.S)
    return m.group(0) if m else None


def update_readme(path: Path) -> bool:
    """Rewrite the table in ``path``; True when it changed."""
    text = path.read_text(encoding="utf-8")
    old = readme_block(text)
    if old is None:
        raise SystemExit(f"{path}: no {START} … {END} markers")
    new = text.replace(old, block())
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    print(f"{target}: {'updated' if update_readme(target) else 'already up to date'}")
