"""Read-after-write lag of GitHub's list endpoints, for the GitHub stand-in.

GitHub serves a single object (``GET /pulls/{n}``) from the primary, but lists (``GET /pulls``,
``GET /issues``, ``GET /commits/{sha}/pulls``) from replicas and search indexes that catch up seconds
later: a pull request merged a moment ago still shows as open, or not yet in ``state=closed``; one just
opened is missing from ``state=open``. GitHub documents no bound; clients are told to treat what they
read as possibly stale ("Best practices for using the REST API", docs.github.com/en/rest/using-the-rest-api/
best-practices-for-using-the-rest-api: use webhooks and re-read instead of relying on a poll). The
mechanism is general: any route module records ``before_write`` for a kind of record, and any list of
that kind reads ``view``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ReadLag:
    """What a list shows ``seconds`` after the fact. With ``seconds`` 0 (the default) lists are current
    and nothing is kept; switching it on affects writes from then on.

    ``before_write(kind, key, current)`` is called right before a record is changed or created
    (``current`` None); ``view(kind, live)`` returns every record of ``kind`` as it was ``seconds`` ago
    on ``clock``: the state before the oldest write newer than that, else the live record, and nothing
    for records created since.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.seconds = 0.0
        self._writes: dict[tuple[str, Hashable], list[tuple[float, Any]]] = {}

    def set(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"list lag must be 0 or more seconds, not {seconds}")
        self.seconds = float(seconds)
        if not seconds:
            self._writes.clear()

    def before_write(self, kind: str, key: Hashable, current: Any | None) -> None:
        if self.seconds <= 0:
            return
        now = self._clock()
        self._forget(now)
        self._writes.setdefault((kind, key), []).append((now, copy.deepcopy(current)))

    def view(self, kind: str, live: Mapping[Any, T]) -> list[T]:
        if self.seconds <= 0 or not self._writes:
            return list(live.values())
        horizon = self._clock() - self.seconds
        keys = list(live) + [key for (k, key) in self._writes if k == kind and key not in live]
        shown: list[T] = []
        for key in keys:
            later = [before for when, before in self._writes.get((kind, key), []) if when > horizon]
            record = later[0] if later else live.get(key)
            if record is not None:
                shown.append(record)
        return shown

    def _forget(self, now: float) -> None:
        """Drop writes every list already shows."""
        horizon = now - self.seconds
        for key in list(self._writes):
            kept = [(when, before) for when, before in self._writes[key] if when > horizon]
            if kept:
                self._writes[key] = kept
            else:
                del self._writes[key]
