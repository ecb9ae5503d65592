"""The freight ledger on GitHub Deployments: read (every page, every status) as ``LedgerEntry`` values.
A mixin of ``RepoGitHub``.

Deployments list newest first and filter by ``environment``, ``sha``, ``ref`` and ``task``
(docs.github.com/en/rest/deployments/deployments#list-deployments); a deployment's statuses list newest
first (docs.github.com/en/rest/deployments/statuses#list-deployment-statuses). Both are read to their end
by their ``Link`` headers. An entry whose verdict is in (``verified``/``failed``) no longer changes its
outcome (GitHub only adds ``inactive`` after it), so it is kept in a bounded per-process cache and its
statuses are not read again; the cache is derived from GitHub and a restart only empties it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from bot.core.ledger import LEDGER_TASKS, LedgerEntry, entry_from_deployment
from bot.github.client import call
from bot.github.comments import PER_PAGE, RepoComments

DECIDED_CACHE_SIZE = 10_000
_NEXT_PAGE_RE = re.compile(r'<[^<>]*[?&]page=(\d+)[^<>]*>;\s*rel="next"')
_decided: OrderedDict[tuple[str, str, int], LedgerEntry] = OrderedDict()


def forget_decided() -> None:
    """Empty the cache of decided entries (tests: every stand-in numbers its deployments alike)."""
    _decided.clear()


class RepoDeployments(RepoComments):
    async def read_ledger(self, environment: str | None = None) -> list[LedgerEntry]:
        """Ferry's ledger entries, newest first: of one stage (``environment``), or of every stage.

        Deployments written by other tools (another ``task``, or a payload Ferry did not write) are left
        out. Errors: ``GitHubError`` (temporary for 5xx, timeouts and rate limits).
        """
        entries: list[LedgerEntry] = []
        for task in LEDGER_TASKS:
            params: dict[str, Any] = {"task": task}
            if environment is not None:
                params["environment"] = environment
            for deployment in await self._raw_pages(
                f"listing {task} deployments of {self.full_name}", "deployments", params
            ):
                entry = await self._entry(deployment)
                if entry is not None:
                    entries.append(entry)
        entries.sort(key=lambda e: (e.created_at, e.deployment_id), reverse=True)
        return entries

    async def _entry(self, deployment: dict[str, Any]) -> LedgerEntry | None:
        key = (str(self.client.config.base_url), self.full_name, int(deployment["id"]))
        cached = _decided.get(key)
        if cached is not None:
            _decided.move_to_end(key)
            return cached
        statuses = await self._raw_pages(
            f"listing the statuses of deployment {key[2]} of {self.full_name}",
            f"deployments/{key[2]}/statuses",
            {},
        )
        entry = entry_from_deployment(deployment, statuses)
        if entry is not None and entry.outcome in ("verified", "failed"):
            _decided[key] = entry
            while len(_decided) > DECIDED_CACHE_SIZE:
                _decided.popitem(last=False)
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
