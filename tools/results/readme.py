"""Regenerate the text between ``<!-- results:start -->`` and ``<!-- results:end -->`` in a README."""
from __future__ import annotations

from pathlib import Path

from tools.results.report import warn

START, END = "<!-- results:start -->", "<!-- results:end -->"


def replace_between_markers(path: Path, body: str) -> bool:
    """Put ``body`` between the markers of ``path``; everything outside stays byte for byte. False (with a
    note on stderr) if the file or its markers are missing."""
    if not path.exists():
        warn(f"{path}: no such file; results section not written")
        return False
    text = path.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < 0 or end < start:
        warn(f"{path}: no '{START}' ... '{END}' markers; results section not written")
        return False
    new = text[:start + len(START)] + "\n" + body.strip("\n") + "\n" + text[end:]
    if new != text:
        path.write_text(new)
    return True
