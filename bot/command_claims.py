"""Which replica answers a comment command: the one whose 👀 reaction GitHub created.

"Create reaction for an issue comment" answers 201 when the reaction is new and 200 when the same user
already reacted with it (docs.github.com/en/rest/reactions/reactions; the same for commit comments). Every
replica of the App reacts as the same bot account, so among replicas reacting at once exactly one gets
201: an atomic claim, and only its winner answers. A claim older than ``timeout`` with no reply (its
replica died, or cannot reach GitHub) is taken over: that reaction is deleted by its id, which never
removes a newer one, and made again; again only a 201 wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, Protocol

from bot.command_replies import Claim, Comment

log = logging.getLogger("ferry.commands")

EYES = "eyes"
DEFAULT_CLAIM_TIMEOUT = timedelta(minutes=2)  # FERRY_COMMAND_CLAIM_TIMEOUT
Key = tuple[str, str, int]  # (repository, "issue" | "commit", comment id)


class ClaimGitHub(Protocol):
    async def claim_comment(
        self, kind: Literal["issue", "commit"], comment_id: int, content: str
    ) -> Claim: ...
    async def drop_reaction(
        self, kind: Literal["issue", "commit"], comment_id: int, reaction_id: int
    ) -> None: ...
    async def has_reply(self, comment: Comment) -> bool: ...


class CommandClaims:
    """This process's claims: ``win`` says whether it answers a command; ``done`` forgets an answered one.

    ``timeout`` is how long another replica's claim stands without a reply; ``clock`` is now (UTC).
    """

    def __init__(self, timeout: timedelta, clock: Callable[[], datetime]) -> None:
        self.timeout = timeout
        self.clock = clock
        # comment -> the id of the 👀 reaction this process won it with (a cache: lost on a restart, when
        # the claim is taken over once it is ``timeout`` old)
        self._won: dict[Key, int] = {}

    async def win(self, event: Comment, gh: ClaimGitHub) -> Literal["won", "answered"] | float:
        """ "won": this process answers; "answered": a reply is there already; else the seconds until the
        claim another replica holds may be taken over."""
        key = (event.repo, event.kind, event.comment_id)
        claim = await gh.claim_comment(event.kind, event.comment_id, EYES)
        if claim.new or self._won.get(key) == claim.reaction_id:
            self._won[key] = claim.reaction_id
            return "won"
        if await gh.has_reply(event):
            return "answered"
        age = (self.clock() - claim.created_at) if claim.created_at is not None else self.timeout
        if age < self.timeout:
            return (self.timeout - age).total_seconds()
        await gh.drop_reaction(event.kind, event.comment_id, claim.reaction_id)
        again = await gh.claim_comment(event.kind, event.comment_id, EYES)
        if not again.new:
            return self.timeout.total_seconds()
        log.info(
            "taking over a command claimed and left unanswered",
            extra={"repo": event.repo, "comment": event.comment_id, "claimed_for": age.total_seconds()},
        )
        self._won[key] = again.reaction_id
        return "won"

    def done(self, event: Comment) -> None:
        self._won.pop((event.repo, event.kind, event.comment_id), None)
