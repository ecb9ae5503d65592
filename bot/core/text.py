"""Small text rules shared by everything people read (statuses, comments)."""

from __future__ import annotations

STATUS_DESCRIPTION_LIMIT = 140  # GitHub rejects longer commit status descriptions


def fit_description(text: str, limit: int = STATUS_DESCRIPTION_LIMIT) -> str:
    """One line within GitHub's limit, cut at a word with an ellipsis when too long."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
