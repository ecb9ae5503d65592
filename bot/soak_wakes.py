"""One timer per repository whose verifying stages all soak: it wakes the repository at the earliest soak end
(``bot.core.wake``) instead of the fast interval polling it. A cache of what the last snapshot said: lost on
a restart, when the first pass computes it again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.core.snapshot import Snapshot
from bot.core.wake import next_wake

SOAK_WAKE_SLACK = 0.5  # seconds after a soak's end the pass that posts its verdict runs


class SoakWakes:
    """``wake(repo)`` is called at a soak's end (the reconciler's cheap trigger)."""

    def __init__(self, wake: Callable[[str], None]) -> None:
        self.wake = wake
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def __contains__(self, repo: object) -> bool:
        return repo in self._timers

    def repos(self) -> set[str]:
        """The repositories waiting for a soak's end."""
        return set(self._timers)

    def schedule(self, snapshot: Snapshot) -> None:
        """Wake ``snapshot``'s repository at its earliest soak end, when every verifying stage only soaks;
        otherwise forget any timer it had (it is polled, or nothing verifies)."""
        repo = snapshot.repo
        old = self._timers.pop(repo, None)
        if old is not None:
            old.cancel()
        wake = next_wake(snapshot)
        if wake.poll or wake.at is None:
            return
        delay = max(0.0, (wake.at - snapshot.now).total_seconds()) + SOAK_WAKE_SLACK
        self._timers[repo] = asyncio.get_running_loop().call_later(delay, self._ended, repo)

    def cancel(self) -> None:
        """Stop every timer (the reconciler is stopping)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _ended(self, repo: str) -> None:
        self._timers.pop(repo, None)
        self.wake(repo)
