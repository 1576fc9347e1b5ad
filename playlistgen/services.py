"""The long-lived components of a running daemon, built in the CLI entry point and passed to
the HTTP app explicitly (no singletons). Later components are added as fields here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .config import Settings
from .core.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    started_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.db.close()
