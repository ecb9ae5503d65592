"""The freight ledger on GitHub Deployments: read (every page, every status) as ``LedgerEntry`` values.
A mixin of ``RepoGitHub``.

Deployments list newest first and filter by ``environment``, ``sha``, ``ref`` and ``task``
(docs.github.com/en/rest/deployments/deployments#list-deployments); a deployment's statuses list newest
first (docs.github.com/en/rest/deployments/statuses#list-deployment-statuses). Both are read to their end
by their ``Link`` headers. An entry whose verdict is in (``verified``/``failed``) and that is ``inactive`` no
longer changes (GitHub adds nothing after it), so it is kept in a bounded per-process cache and its
statuses are not read again; the cache is derived from GitHub and a restart only empties it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from bot.core.actions import RecordDeployment
from bot.core.ledger import LEDGER_TASKS, LedgerEntry, deployment_payload, entry_from_deployment
from bot.github.client import call
from bot.github.comments import PER_PAGE, RepoComments

DECIDED_CACHE_SIZE = 10_000
_NEXT_PAGE_RE = re.compile(r'<[^<>]*[?&]page=(\d+)[^<>]*>;\s*rel="next"')


class RepoDeployments(RepoComments):
    async def read_ledger(self, environment: str | None = None) -> list[LedgerEntry]:
        """Ferry's ledger entries, newest first: of one stage (``environment``), or of every stage.

        Deployments written by other tools (another ``task``, or a payload Ferry did not write) are left
        out. Errors: ``GitHubError`` (temporary for 5xx, timeouts and rate limits).
        """
        # One listing, Ferry's tasks kept here rather than one filtered listing per task: a third of the
        # requests while a repository's deployments are mostly Ferry's.
        params: dict[str, Any] = {} if environment is None else {"environment": environment}
        listed = await self._raw_pages(f"listing the deployments of {self.full_name}", "deployments", params)
        entries: list[LedgerEntry] = []
        for deployment in listed:
            if deployment.get("task") not in LEDGER_TASKS:
                continue  # another tool's: its statuses are never read
            entry = await self._entry(deployment)
            if entry is not None:
                entries.append(entry)
        entries.sort(key=lambda e: (e.created_at, e.deployment_id), reverse=True)
        return entries

    async def record_deployment(self, action: RecordDeployment) -> bool:
        """Write one ledger record; returns whether anything was written.

        Look before create: the newest deployment of ``action.sha`` to the environment with the task
        (any of Ferry's tasks for ``inactive``) is reused; one is created only when there is none, and
        never for ``inactive``. Its status is added only when its newest status is another state.
        The deployment is created with ``auto_merge: false`` (Ferry deploys a commit, never merges into
        it), ``required_contexts: []`` (the commit status decides, not GitHub's check) and
        ``transient_environment: false``
        (docs.github.com/en/rest/deployments/deployments#create-a-deployment).
        Errors: ``GitHubError`` (temporary for 5xx, timeouts and rate limits).
        """
        deployment = await self._find_deployment(action.stage, action.sha, action.task or None)
        if deployment is None:
            if action.state == "inactive":
                return False
            deployment = await self._create_deployment(action)
            if action.state != "in_progress":  # its verification began before: the history says so
                await self._post_status(int(deployment["id"]), action, "in_progress", "Verifying")
        number = int(deployment["id"])
        newest = await call(
            f"reading the newest status of deployment {number}",
            self.client.arequest(
                "GET",
                f"/repos/{self.owner}/{self.name}/deployments/{number}/statuses",
                params={"per_page": 1},
            ),
        )
        states = [s.get("state") for s in newest.json()]
        if states and states[0] == action.state:
            return False
        await self._post_status(number, action, action.state, action.description)
        return True

    async def _post_status(self, number: int, action: RecordDeployment, state: str, description: str) -> None:
        body: dict[str, Any] = {"state": state, "description": description}
        if action.url and state != "inactive":
            body |= {"environment_url": action.url, "log_url": action.url}
        await call(
            f"recording {state} on deployment {number} ({action.stage})",
            self.client.arequest(
                "POST", f"/repos/{self.owner}/{self.name}/deployments/{number}/statuses", json=body
            ),
        )

    async def _find_deployment(self, environment: str, sha: str, task: str | None) -> dict[str, Any] | None:
        params: dict[str, Any] = {"environment": environment, "sha": sha}
        if task is not None:
            params["task"] = task
        found = await self._raw_pages(
            f"looking for deployments of {sha[:7]} to {environment}", "deployments", params
        )
        mine = [d for d in found if d.get("task") in LEDGER_TASKS and d.get("sha") == sha]
        return max(mine, key=lambda d: int(d["id"])) if mine else None

    async def _create_deployment(self, action: RecordDeployment) -> dict[str, Any]:
        body = {
            "ref": action.sha,
            "task": action.task,
            "environment": action.stage,
            "payload": deployment_payload(action.freight, pushed_at=action.pushed_at),
            "description": f"{action.freight.label} ({action.freight.id})"[:140],
            "auto_merge": False,
            "required_contexts": [],
            "transient_environment": False,
            "production_environment": action.production,
        }
        response = await call(
            f"recording {action.task} of {action.sha[:7]} in {action.stage}",
            self.client.arequest("POST", f"/repos/{self.owner}/{self.name}/deployments", json=body),
        )
        created: dict[str, Any] = response.json()
        return created

    def _decided_cache(self) -> OrderedDict[tuple[str, int], LedgerEntry]:
        """This client's cache of decided entries: one per GitHub a client talks to, since deployment
        ids are unique only within one GitHub (a second GitHub, or the sandbox's next world, reuses them)."""
        cache: OrderedDict[tuple[str, int], LedgerEntry] | None = getattr(self, "_ledger_decided", None)
        if cache is None:
            cache = OrderedDict()
            self._ledger_decided = cache
        return cache

    async def _entry(self, deployment: dict[str, Any]) -> LedgerEntry | None:
        key = (self.full_name, int(deployment["id"]))
        decided = self._decided_cache()
        cached = decided.get(key)
        if cached is not None:
            decided.move_to_end(key)
            return cached
        statuses = await self._raw_pages(
            f"listing the statuses of deployment {key[1]} of {self.full_name}",
            f"deployments/{key[1]}/statuses",
            {},
        )
        entry = entry_from_deployment(deployment, statuses)
        # A decided entry changes no more once ``inactive`` (an active one may still be superseded).
        if entry is not None and entry.outcome in ("verified", "failed") and not entry.active:
            decided[key] = entry
            while len(decided) > DECIDED_CACHE_SIZE:
                decided.popitem(last=False)
        return entry

    async def _raw_pages(self, doing: str, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item of a list as GitHub's JSON (not githubkit's models: a deployment's ``payload`` is
        free-form JSON and must reach ``entry_from_deployment`` as written)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            response = await call(
                doing,
                self.client.arequest(
                    "GET",
                    f"/repos/{self.owner}/{self.name}/{path}",
                    params={**params, "per_page": PER_PAGE, "page": page},
                ),
            )
            items = response.json()
            found += items
            match = _NEXT_PAGE_RE.search(response.headers.get("link", ""))
            if match is None or not items:
                return found
            page = int(match[1])
