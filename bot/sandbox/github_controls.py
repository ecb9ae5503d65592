"""The GitHub stand-in's knobs for tests and the sandbox driver: faults, secondary rate limits, delivery
orderings, list lag, repository and App settings, branch protection, reviews by people, the App
manifest flow, and a view of the Deployments ledger. Everything is off (today's kind behaviour) until set.

A mixin of ``GitHubStandIn``; each knob's GitHub source is cited where the behaviour lives
(``github_webhooks``, ``github_lag``, ``github_limits``, ``github_protection``, ``github_routes_*``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_limits import SecondaryLimits, secondary_body
from bot.sandbox.github_ops import GitHubOps
from bot.sandbox.github_pipeline import Fault, Pipeline
from bot.sandbox.github_records import ManifestRecord, Protection
from bot.sandbox.github_routes_deployments import DeploymentRoutes
from bot.sandbox.github_routes_reviews import ReviewRoutes
from bot.sandbox.github_state import GitHubState
from bot.sandbox.github_webhooks import DeliveryOptions, WebhookSender


class StandInControls:
    state: GitHubState
    ops: GitHubOps
    _pipeline: Pipeline
    _webhooks: WebhookSender
    _reviews: ReviewRoutes
    _deployments: DeploymentRoutes

    # faults and limits -------------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        route: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
        after_write: bool = False,
        login: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``; ``route`` is a route key such as
        ``/repos/{owner}/{repo}/pulls`` (as in ``requests``) or a concrete path. With ``after_write`` each
        request is carried out first (GitHub may answer 502 for a write it applied), and ``login`` limits
        it to that account's requests."""
        default = {
            "message": "Server Error" if status >= 500 else "Forced failure",
            "documentation_url": shapes.DOCS,
        }
        self._pipeline.faults.append(
            Fault(
                method.upper(), route, status, dict(headers or {}), body or default, times, after_write, login
            )
        )

    def fail_next_secondary_limit(
        self,
        method: str,
        route: str,
        *,
        status: int = 403,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests as a secondary rate limit does: 403 or 429, GitHub's
        message, ``x-ratelimit-remaining`` above 0, and ``Retry-After`` only when given (GitHub often
        leaves it out; see ``github_limits``)."""
        if status not in (403, 429):
            raise ValueError(f"GitHub answers a secondary limit with 403 or 429, not {status}")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.fail_next(method, route, status, headers=headers, body=secondary_body(content=True), times=times)

    def set_secondary_limits(
        self,
        *,
        per_minute: int | None = None,
        per_hour: int | None = None,
        concurrent: int | None = None,
        block_seconds: float = 60.0,
        status: int | None = 403,
        seed: int | None = None,
        chance: float = 0.0,
    ) -> None:
        """Trip secondary limits on bursts of content-generating requests (POST/PATCH/PUT/DELETE) per
        caller: more than ``per_minute`` in 60 s, ``per_hour`` in an hour, or ``concurrent`` at once, or
        at random with ``chance`` per request (GitHub's undisclosed limits); the caller is then refused for
        ``block_seconds``. All None (the default) turns them off."""
        self._pipeline.secondary = SecondaryLimits(
            per_minute, per_hour, concurrent, block_seconds, status, seed, chance
        )

    @property
    def secondary_refusals(self) -> list[tuple[str, float, bool]]:
        """Every secondary-limit refusal so far: (caller, when, whether it tripped the limit)."""
        return list(self._pipeline.secondary.refused)

    # orderings ---------------------------------------------------------------------------------
    def set_delivery(
        self,
        *,
        delay: float = 0.0,
        reorder: bool = False,
        duplicate: float = 0.0,
        replicas: Iterable[str] | None = None,
        seed: int | None = None,
    ) -> None:
        """Deliver webhooks as unkindly as GitHub may: each 0–``delay`` s late, overtaking each other with
        ``reorder``, sent twice (same ``X-GitHub-Delivery``) with probability ``duplicate``, each to one
        of ``replicas`` at random. ``seed`` makes the plan reproducible. No arguments: back to in-order,
        at once, once, to the one URL."""
        self._webhooks.configure(DeliveryOptions(delay, reorder, duplicate, list(replicas or []), seed))

    def set_list_lag(self, seconds: float) -> None:
        """Lists of issues and pull requests show each write ``seconds`` late (on the stand-in's clock):
        a merged pull request stays open in ``state=open`` and missing from ``state=closed``."""
        self.state.lag.set(seconds)

    # settings ----------------------------------------------------------------------------------
    def set_merge_settings(
        self,
        *,
        allow_merge_commit: bool | None = None,
        allow_squash_merge: bool | None = None,
        allow_rebase_merge: bool | None = None,
        delete_branch_on_merge: bool | None = None,
    ) -> None:
        """Change the repository's merge settings (None keeps one); a turned-off method answers 405."""
        settings = self.state.site.settings
        for name, value in (
            ("allow_merge_commit", allow_merge_commit),
            ("allow_squash_merge", allow_squash_merge),
            ("allow_rebase_merge", allow_rebase_merge),
            ("delete_branch_on_merge", delete_branch_on_merge),
        ):
            if value is not None:
                setattr(settings, name, value)

    def set_app_permissions(self, permissions: Mapping[str, str]) -> None:
        """Replace what the App is granted, e.g. ``{"contents": "write", "administration": "read"}``;
        installation tokens get 403 "Resource not accessible by integration" beyond it."""
        for name, level in permissions.items():
            if level not in ("read", "write", "admin"):
                raise ValueError(f"permission {name!r}: level must be read, write or admin, not {level!r}")
        self.state.site.app_permissions.clear()
        self.state.site.app_permissions.update({"metadata": "read", **permissions})

    def set_app_events(self, events: Iterable[str]) -> None:
        """Replace the events the App subscribes to; other events are not delivered (observers see all)."""
        self.state.site.app_events[:] = list(events)

    def set_branch_protection(
        self,
        branch: str = "main",
        *,
        contexts: Iterable[str] = (),
        checks: Iterable[tuple[str, int | None]] = (),
        strict: bool = False,
        enforce_admins: bool = False,
        required_approving_review_count: int | None = None,
        dismiss_stale_reviews: bool = False,
    ) -> None:
        """Protect ``branch`` as a repository admin would: required status ``contexts`` (or ``checks``
        pinned to an App id), required approving reviews, whether admins are bound too."""
        self.state.protection[branch] = Protection(
            branch,
            list(contexts),
            list(checks),
            strict,
            enforce_admins,
            required_approving_review_count,
            dismiss_stale_reviews,
        )

    def remove_branch_protection(self, branch: str = "main") -> None:
        self.state.protection.pop(branch, None)

    # people ------------------------------------------------------------------------------------
    async def review(
        self, pr: int, login: str, event: str = "APPROVE", body: str = "", commit_id: str | None = None
    ) -> dict[str, Any]:
        """``login`` reviews pull request ``pr`` (APPROVE, REQUEST_CHANGES, COMMENT) as on GitHub's
        "Review changes" form: same rules, same webhook. Returns the review's REST body."""
        record = self.state.issues.get(pr)
        if record is None or record.pull is None:
            raise ValueError(f"review: there is no pull request #{pr}")
        async with self.state.write_lock:
            review = await self._reviews.submit(record, self.state.account(login), event, body, commit_id)
        return self._reviews.review_body(review)

    async def approve(self, pr: int, login: str, body: str = "") -> dict[str, Any]:
        """``login`` approves pull request ``pr`` (their role decides whether it counts for protection)."""
        return await self.review(pr, login, "APPROVE", body)

    # the ledger and the manifest flow ----------------------------------------------------------
    def deployments(self, environment: str | None = None) -> list[dict[str, Any]]:
        """Deployments (newest first) as ``GET /deployments`` shows them, each with an extra key
        ``statuses`` (not GitHub's: its statuses, newest first, as ``GET .../statuses`` shows them)."""
        return [
            self._deployments.deployment_body(d)
            | {"statuses": [self._deployments.status_body(d, s) for s in reversed(d.statuses)]}
            for d in sorted(self.state.deployments.values(), key=lambda d: d.id, reverse=True)
            if environment is None or d.environment == environment
        ]

    def register_manifest(self, manifest: Mapping[str, Any], code: str | None = None) -> str:
        """What GitHub does when a person confirms an App manifest: keep it under a one-time ``code``
        (returned) for ``POST /app-manifests/{code}/conversions`` to exchange within an hour."""
        if not isinstance(manifest.get("url"), str) or not manifest["url"]:
            raise ValueError("App manifest: 'url' (the App's homepage) is required, as GitHub requires it")
        code = code or secrets.token_hex(10)
        self.state.manifests[code] = ManifestRecord(code, dict(manifest), self.state.clock())
        return code
