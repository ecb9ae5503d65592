"""When the reconciler must look at a repository again, from its snapshot alone.

A stage whose health is pending is verifying: Argo CD is read often (``poll``) until its verdict. Once
every app of the stage passed, only the soak remains (``bot.core.verdict``: healthy for ``soak`` counted
from the later of the operation's end and the last health transition), and nothing changes the verdict
before the soak ends but a degrade, which the idle interval's pass (it reads pending stages' apps too)
and the soak's end both see. So a repository whose verifying stages all soak is woken at the earliest
soak end (``at``) instead of being polled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.gates import health_context
from bot.core.snapshot import Snapshot
from bot.core.verdict import is_soaking, soak_until, stage_verdict


@dataclass(frozen=True)
class Wake:
    """``poll``: a stage verifies and needs its apps read at the fast interval. ``at``: the earliest
    moment a soaking stage's verdict is due (None: none soaks). Neither: nothing verifies."""

    poll: bool = False
    at: datetime | None = None


def next_wake(snapshot: Snapshot) -> Wake:
    """How to come back to ``snapshot``'s repository (see the module docstring)."""
    config = snapshot.config
    if config is None:
        return Wake()
    soak_ends: list[datetime] = []
    for name, stage in config.stages.items():
        deploy = snapshot.deploys.get(name)
        health = deploy.statuses.get(health_context(name)) if deploy is not None else None
        if deploy is None or health is None or health.state != "pending":
            continue
        states = snapshot.app_states.get(name)
        if stage.argocd is None or not states:
            return Wake(poll=True)  # not read this pass, or nothing to judge yet: keep looking
        verdict = stage_verdict(
            states,
            deploy.commit,
            requested_at=snapshot.now,  # the timeout is the pass's business; here only "soaking or not"
            now=snapshot.now,
            timeout=stage.verify.timeout,
            soak=stage.verify.soak,
            relation=snapshot.relations.get(name),
            default_branch=snapshot.default_branch,
            require_synced=stage.verify.require_synced,
        )
        until = soak_until(states, stage.verify.soak)
        if not is_soaking(verdict) or until is None:
            return Wake(poll=True)
        soak_ends.append(until)
    return Wake(at=min(soak_ends)) if soak_ends else Wake()
