"""Paths and small helpers that several test modules share."""

from __future__ import annotations

from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
PROFILES: Final = REPO / "profiles"
