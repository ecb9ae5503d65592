"""Deployments routes of the GitHub stand-in: deployments, their statuses, and environments, with
GitHub's rules (docs.github.com/en/rest/deployments/deployments and .../deployments/statuses):

- ``POST /deployments``: ``ref`` (branch, tag or sha) is required, "No ref found for: <ref>" (422)
  otherwise. ``auto_merge`` (default true) "ensure[s] that the requested ref is not behind the
  repository's default branch": a branch behind it gets the default branch merged in and the answer is
  202 "Auto-merged main into <ref> on deployment." with no deployment; a conflict, or a ref that is not a
  branch, answers 409. ``required_contexts`` (default: every context on the commit) must all be
  ``success`` or the answer is 409 "Conflict: Commit status checks failed for <ref>."; ``[]`` skips the
  check. ``environment`` defaults to ``production``; ``production_environment`` defaults to true only
  there. Deploying to a new environment name creates the environment. A ``deployment`` webhook follows.
- ``POST /deployments/{id}/statuses``: ``state`` one of error, failure, inactive, in_progress, queued,
  pending, success; ``log_url`` also sets ``target_url``; ``environment`` defaults to the previous
  status's, then the deployment's. With ``auto_inactive`` (default true) a ``success`` "adds a new
  inactive status to all prior non-transient, non-production environment deployments with the same
  repository and environment name ... only ... deployments that had a success state". A
  ``deployment_status`` webhook follows, except for ``inactive`` ("A webhook event is not fired for
  deployment statuses with an inactive state").
- Lists are newest first and paginated; ``GET /deployments`` filters by sha, ref, task, environment.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.sandbox import github_deploy_shapes as dshapes
from bot.sandbox.github_ops import (
    ApiError,
    GitHubOps,
    actor,
    invalid,
    json_response,
    not_found,
    paginate,
    read_json,
)
from bot.sandbox.github_records import DeploymentRecord, DeploymentStatusRecord, EnvironmentRecord
from bot.sandbox.github_state import GITHUB_COMMITTER, Account
from bot.sandbox.gitstore import Signature

REPO = "/repos/{owner}/{repo}"
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
DESCRIPTION_LIMIT = 140
DEFAULT_BRANCH = "main"


def _typed(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    """``body[name]`` when it has the JSON type GitHub's schema asks for; 422 in GitHub's words if not."""
    value = body.get(name, default)
    if value is not default and not isinstance(value, kind):
        raise ApiError(
            422, f"Invalid request.\n\nFor 'properties/{name}', {json.dumps(value)} is not a valid type."
        )
    return value


class DeploymentRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state
        self.store = ops.state.store

    def register(self, router: web.UrlDispatcher) -> None:
        deployment = REPO + "/deployments/{deployment_id:\\d+}"
        router.add_get(REPO + "/deployments", self.list_deployments)
        router.add_post(REPO + "/deployments", self.create_deployment)
        router.add_get(deployment, self.get_deployment)
        router.add_get(deployment + "/statuses", self.list_statuses)
        router.add_post(deployment + "/statuses", self.create_status)
        router.add_get(deployment + "/statuses/{status_id:\\d+}", self.get_status)
        router.add_get(REPO + "/environments", self.list_environments)

    # bodies ------------------------------------------------------------------------------------
    def deployment_body(self, record: DeploymentRecord) -> dict[str, Any]:
        return dshapes.deployment(self.ops.site, record, self.state.account(record.creator), self.ops.owner)

    def status_body(self, record: DeploymentRecord, status: DeploymentStatusRecord) -> dict[str, Any]:
        creator = self.state.account(status.creator)
        return dshapes.deployment_status(self.ops.site, record.id, status, creator, self.ops.owner)

    def _deployment(self, request: web.Request) -> DeploymentRecord:
        record = self.state.deployments.get(int(request.match_info["deployment_id"]))
        if record is None:
            raise not_found()
        return record

    # deployments -------------------------------------------------------------------------------
    async def list_deployments(self, request: web.Request) -> web.Response:
        query = request.query
        found = [
            d
            for d in sorted(self.state.deployments.values(), key=lambda d: d.id, reverse=True)
            if all(
                query.get(name) in (None, "none", getattr(d, name))
                for name in ("sha", "ref", "task", "environment")
            )
        ]
        page, headers = paginate(request, found)
        return json_response([self.deployment_body(d) for d in page], headers=headers)

    async def get_deployment(self, request: web.Request) -> web.Response:
        return json_response(self.deployment_body(self._deployment(request)))

    async def create_deployment(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise invalid("Validation Failed", "Deployment", "ref", "missing_field")
        task = _typed(body, "task", str, "deploy")
        auto_merge = _typed(body, "auto_merge", bool, True)
        required = _typed(body, "required_contexts", list, None)
        payload = _typed(body, "payload", (dict, str), {})
        environment = _typed(body, "environment", str, "production")
        description = _typed(body, "description", (str, type(None)), "")
        transient = _typed(body, "transient_environment", bool, False)
        production = _typed(body, "production_environment", bool, environment == "production")
        if isinstance(payload, str) and payload.strip():
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
            payload = parsed if isinstance(parsed, dict) else payload
        who = actor(request)
        async with self.state.write_lock:
            sha = await self.store.resolve_commit(ref)
            if sha is None:
                raise ApiError(422, f"No ref found for: {ref}")
            if auto_merge:
                merged = await self._merge_default_branch(ref, sha, who)
                if merged is not None:
                    return json_response({"message": merged}, 202)
            self._check_contexts(ref, sha, required)
            now = self.state.clock()
            record = DeploymentRecord(
                id=self.state.next_id(),
                sha=sha,
                ref=ref,
                task=task,
                payload=payload,
                original_environment=environment,
                environment=environment,
                description=description,
                creator=who.login,
                created_at=now,
                updated_at=now,
                transient_environment=transient,
                production_environment=production,
            )
            self.state.deployments[record.id] = record
            if environment not in self.state.environments:
                self.state.environments[environment] = EnvironmentRecord(
                    self.state.next_id(), environment, now, now
                )
            created = self.deployment_body(record)
            self.state.emit(
                "deployment", dshapes.deployment_event(self.ops.site, self.ops.owner, who, created)
            )
        return json_response(created, 201, headers={"Location": created["url"]})

    async def _merge_default_branch(self, ref: str, sha: str, who: Account) -> str | None:
        """GitHub's ``auto_merge``: None when ``ref`` is not behind the default branch; the 202 message
        when it merged the default branch into the ``ref`` branch; 409 when it cannot."""
        default = await self.store.get_ref(f"refs/heads/{DEFAULT_BRANCH}")
        if default is None or await self.store.is_ancestor(default, sha):
            return None
        branch = ref.removeprefix("refs/heads/")
        branch_sha = await self.store.get_ref(f"refs/heads/{branch}")
        tree = await self.store.merge_tree(sha, default) if branch_sha == sha else None
        if tree is None:
            raise ApiError(409, f"Conflict merging {DEFAULT_BRANCH} into {ref}.")
        now = int(self.state.clock())
        merge = await self.store.commit_tree(
            tree,
            [sha, default],
            f"Merge {DEFAULT_BRANCH} into {branch}",
            Signature(who.login, who.email, now),
            Signature(*GITHUB_COMMITTER, now),
        )
        await self.ops.move_ref(f"refs/heads/{branch}", merge, who, expect=sha)
        return f"Auto-merged {DEFAULT_BRANCH} into {ref} on deployment."

    def _check_contexts(self, ref: str, sha: str, required: list[Any] | None) -> None:
        latest = {r.context: r.state for r in self.ops.latest_statuses(sha)}
        wanted = list(latest) if required is None else [str(c) for c in required]
        if all(latest.get(context) == "success" for context in wanted):
            return
        contexts = [{"context": c, "state": latest.get(c, "missing")} for c in wanted]
        raise ApiError(
            409,
            f"Conflict: Commit status checks failed for {ref}.",
            [
                {
                    "contexts": contexts,
                    "resource": "Deployment",
                    "field": "required_contexts",
                    "code": "invalid",
                }
            ],
        )

    # statuses ----------------------------------------------------------------------------------
    async def list_statuses(self, request: web.Request) -> web.Response:
        record = self._deployment(request)
        page, headers = paginate(request, list(reversed(record.statuses)))
        return json_response([self.status_body(record, s) for s in page], headers=headers)

    async def get_status(self, request: web.Request) -> web.Response:
        record = self._deployment(request)
        wanted = int(request.match_info["status_id"])
        for status in record.statuses:
            if status.id == wanted:
                return json_response(self.status_body(record, status))
        raise not_found()

    async def create_status(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        state = body.get("state")
        if state not in DEPLOYMENT_STATES:
            raise invalid("Validation Failed", "DeploymentStatus", "state")
        description = _typed(body, "description", str, "")
        if len(description) > DESCRIPTION_LIMIT:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "DeploymentStatus",
                        "field": "description",
                        "code": "custom",
                        "message": f"description is too long (maximum is {DESCRIPTION_LIMIT} characters)",
                    }
                ],
            )
        log_url = _typed(body, "log_url", str, "")
        target_url = log_url or _typed(body, "target_url", str, "")  # "Setting log_url ... sets target_url"
        environment_url = _typed(body, "environment_url", str, "")
        auto_inactive = _typed(body, "auto_inactive", bool, True)
        who = actor(request)
        async with self.state.write_lock:
            record = self._deployment(request)
            environment = _typed(
                body,
                "environment",
                str,
                record.statuses[-1].environment if record.statuses else record.environment,
            )
            now = self.state.clock()
            status = DeploymentStatusRecord(
                self.state.next_id(),
                state,
                who.login,
                description,
                environment,
                target_url,
                log_url or target_url,
                environment_url,
                now,
            )
            record.statuses.append(status)
            record.environment, record.updated_at = environment, now
            if environment not in self.state.environments:
                self.state.environments[environment] = EnvironmentRecord(
                    self.state.next_id(), environment, now, now
                )
            self.state.environments[environment].updated_at = now
            if state == "success" and auto_inactive:
                self._inactivate_earlier(record, who.login, now)
            created = self.status_body(record, status)
            if state != "inactive":
                self.state.emit(
                    "deployment_status",
                    dshapes.deployment_status_event(
                        self.ops.site, self.ops.owner, who, created, self.deployment_body(record)
                    ),
                )
        return json_response(created, 201, headers={"Location": created["url"]})

    def _inactivate_earlier(self, current: DeploymentRecord, creator: str, now: float) -> None:
        for other in self.state.deployments.values():
            if (
                other.id < current.id
                and other.environment == current.environment
                and not other.transient_environment
                and not other.production_environment
                and other.state == "success"
            ):
                other.statuses.append(
                    DeploymentStatusRecord(
                        self.state.next_id(), "inactive", creator, "", other.environment, "", "", "", now
                    )
                )
                other.updated_at = now

    # environments ------------------------------------------------------------------------------
    async def list_environments(self, request: web.Request) -> web.Response:
        found = sorted(self.state.environments.values(), key=lambda e: e.name)
        page, headers = paginate(request, found)
        return json_response(
            {
                "total_count": len(found),
                "environments": [dshapes.environment(self.ops.site, e) for e in page],
            },
            headers=headers,
        )
