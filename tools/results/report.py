"""Messages about skipped input: one line on stderr naming the file, and a count for the summary."""
from __future__ import annotations

import sys

WARNINGS: list[str] = []


def warn(message: str) -> None:
    WARNINGS.append(message)
    print(f"warning: {message}", file=sys.stderr)
