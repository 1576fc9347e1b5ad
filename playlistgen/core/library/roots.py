"""Is a library root really there? Guards the reconcile against emptying the library.

An unmounted NAS share or an unplugged disk looks like a folder that is missing, empty or
unreadable. If the database knows files under such a root, they are NOT marked missing: the
root is reported unavailable (``/health`` degraded, "library root /x unavailable"), the library
thread tries again, and everything resumes when the root returns. The same holds for a folder
inside a root that cannot be listed, and for files whose stat fails: what could not be looked at
is never taken for gone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

# the reason stored for files that exist but cannot be read (permissions); the reconcile looks
# at such files again every time, since a chmod changes neither size nor mtime
UNREADABLE = "unreadable"


def check_root(root: str) -> str | None:
    """None when the root can be listed and has something in it, else why not."""
    if not os.path.lexists(root):
        return "missing"
    if not os.path.isdir(root):
        return "not a folder"
    try:
        with os.scandir(root) as it:
            empty = next(it, None) is None
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    return "empty" if empty else None


def _prefix(path: str) -> str:
    return path.rstrip(os.sep) + os.sep


def under_any(path: str, folders: Iterable[str]) -> bool:
    """True if ``path`` is one of ``folders`` or inside one of them."""
    return any(path == f or path.startswith(_prefix(f)) for f in folders)


def unavailable_roots(roots: Iterable[str], known: Mapping[str, tuple]) -> dict[str, str]:
    """{root: message} for roots that are missing, empty or unreadable while the database knows
    present files under them (``known``: path -> row whose index 3 is the status)."""
    out: dict[str, str] = {}
    for root in roots:
        reason = check_root(root)
        if reason is None:
            continue
        count = sum(1 for path, row in known.items() if row[3] != "missing" and path.startswith(_prefix(root)))
        if count:
            out[root] = (f"library root {root} unavailable ({reason}) while {count} file(s) are known "
                         "there: not marking them missing; retrying (unmounted disk or share?)")
    return out


def unreadable_reason(exc: OSError) -> str:
    return f"{UNREADABLE}: {exc.strerror or exc} (fix its permissions; the next reconcile retries it)"


def is_unreadable_row(status: str | None, error: str | None) -> bool:
    return status == "failed" and (error or "").startswith(UNREADABLE)
