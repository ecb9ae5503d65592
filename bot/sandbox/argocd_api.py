"""The Argo CD API server's refusals, in the order and words of server/application/application.go.

Errors are grpc-gateway v1 bodies ``{"error", "code", "message"}`` (``runtime.DefaultHTTPError``), with
the HTTP status grpc-gateway maps the gRPC code to (FailedPrecondition and InvalidArgument 400,
PermissionDenied 403, NotFound 404, Unauthenticated 401, Unknown 500). ``Server.Sync`` checks:

- unknown app: 403 "permission denied" without ``project``, 404 ``applications.argoproj.io "x" not
  found`` with it (``getAppEnforceRBAC``);
- a sync window that blocks manual syncs: 403 "cannot sync: blocked by sync window";
- no ``sync`` permission: 403 "permission denied: applications, sync, <project>/<app>, sub: <subject>,
  iat: <time>" (util/rbac ``EnforceErr``); no ``override`` permission for a revision other than the
  target revision when ``application.sync.requireOverridePrivilegeForRevisionSync`` is on: the same
  with ``override``;
- an app being deleted: 400 (FailedPrecondition, code 9) "application is deleting";
- a revision other than ``targetRevision`` on an automated app: 400 code 9 "Cannot sync to <rev>:
  auto-sync currently set to <targetRevision>" (multi-source: "Cannot sync source <repoURL> to <rev>:
  auto-sync currently set to <targetRevision>") (``resolveSourceRevisions``);
- a revision that does not resolve: 400 code 9 "error resolving repo revision: rpc error: ...";
- an operation already set: 400 code 9 "error setting app operation: another operation is already in
  progress" (``SetAppOperation``'s ``ErrAnotherOperationInProgress``, wrapped by ``Sync`` with ``%w``, so
  grpc keeps the code and the message carries the prefix).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from bot.sandbox.argocd_apps import Account, Source
from bot.sandbox.argocd_git import FULL_SHA_RE
from bot.sandbox.argocd_reposerver import RepoServer
from bot.sandbox.argocd_shapes import ts
from bot.sandbox.argocd_state import AppRecord

# gRPC codes (google.golang.org/grpc/codes) and grpc-gateway v1's HTTP status for each.
UNKNOWN, INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED = 2, 3, 5, 7
FAILED_PRECONDITION, UNAUTHENTICATED = 9, 16
HTTP_STATUS = {
    2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 13: 500, 14: 503, 16: 401,
}  # fmt: skip
CODE_FOR_STATUS = {400: 9, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}

ERR_NO_SESSION = "no session information"
ERR_BAD_TOKEN = "invalid session: token signature is invalid"
ERR_DENIED = "permission denied"
ERR_NOT_FOUND = 'applications.argoproj.io "{app}" not found'
ERR_ENFORCE = "permission denied: applications, {action}, {object}, sub: {subject}, iat: {iat}"
ERR_WINDOW = "cannot sync: blocked by sync window"
ERR_DELETING = "application is deleting"
ERR_IN_PROGRESS = "error setting app operation: another operation is already in progress"
ERR_AUTO_SYNC = "Cannot sync to {revision}: auto-sync currently set to {target}"
ERR_AUTO_SYNC_SOURCE = "Cannot sync source {repo} to {revision}: auto-sync currently set to {target}"
ERR_RESOLVE = "error resolving repo revision: rpc error: code = Unknown desc = {detail}"
ERR_UNRESOLVED = "unable to resolve '{revision}' to a commit SHA: revision not found"
ERR_POSITION = "source position is out of range"
ERR_BODY = "request body must be a JSON applicationApplicationSyncRequest"
ERR_INJECTED = "injected failure"


def code_for_status(status: int) -> int:
    """The gRPC code behind an HTTP status, for injected faults."""
    return CODE_FOR_STATUS.get(status, UNKNOWN)


class ApiError(Exception):
    """A refusal: gRPC ``code`` and the server's message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def find_app(apps: Mapping[str, AppRecord], account: Account, name: str, project: str | None) -> AppRecord:
    """``getAppEnforceRBAC`` for the ``get`` action: the app, or the refusal that hides whether it exists."""
    if project and not account.may("get", f"{project}/{name}"):
        raise ApiError(PERMISSION_DENIED, ERR_DENIED)
    app = apps.get(name)
    if app is None or not account.may("get", f"{app.spec.project}/{name}"):
        if project:
            raise ApiError(NOT_FOUND, ERR_NOT_FOUND.format(app=name))
        raise ApiError(PERMISSION_DENIED, ERR_DENIED)
    if project and app.spec.project != project:
        raise ApiError(NOT_FOUND, ERR_NOT_FOUND.format(app=name))
    return app


def enforce(account: Account, action: str, rbac_name: str) -> None:
    """util/rbac ``EnforceErr``: the refusal names the rule, the subject and when its token was issued."""
    if not account.may(action, rbac_name):
        iat = ts(account.issued_at.timestamp()) if account.issued_at else ""
        message = ERR_ENFORCE.format(action=action, object=rbac_name, subject=account.subject, iat=iat)
        raise ApiError(PERMISSION_DENIED, message)


async def sync_revisions(
    repo: RepoServer,
    app: AppRecord,
    body: Mapping[str, Any],
    account: Account,
    *,
    require_override: bool,
    dry_run: bool,
) -> list[str]:
    """``resolveSourceRevisions``: the operation's revision per source, or the refusal."""
    sources = app.spec.sources
    rbac_name = f"{app.spec.project}/{app.name}"
    if app.spec.multi_source:
        asked = [""] * len(sources)
        revisions = list(body.get("revisions") or [])
        for index, position in enumerate(body.get("sourcePositions") or []):
            number = int(position)
            if number <= 0 or number > len(sources) or index >= len(revisions):
                raise ApiError(UNKNOWN, ERR_POSITION)
            asked[number - 1] = str(revisions[index])
    else:
        asked = [str(body.get("revision") or "")]
    resolved = []
    for source, revision in zip(sources, asked, strict=True):
        if revision and revision != (source.target_revision or "HEAD"):
            if require_override:
                enforce(account, "override", rbac_name)
            if app.spec.automated and not dry_run:
                target = source.target_revision
                if app.spec.multi_source:
                    url = source.repo_url or repo.repo_url
                    message = ERR_AUTO_SYNC_SOURCE.format(repo=url, revision=revision, target=target)
                else:
                    message = ERR_AUTO_SYNC.format(revision=revision, target=target)
                raise ApiError(FAILED_PRECONDITION, message)
        resolved.append(await _resolve_revision(repo, source, revision or source.target_revision))
    return resolved


async def _resolve_revision(repo: RepoServer, source: Source, revision: str) -> str:
    """``resolveRevision``: a commit SHA is taken as given, anything else asks repo-server."""
    if source.is_helm_repo:
        repository = repo.charts.get(source.repo_url)
        version = repository.resolve(source.chart or "", revision) if repository else None
        if version is None:
            detail = f'Error: chart "{source.chart}" version "{revision}" not found'
            raise ApiError(FAILED_PRECONDITION, ERR_RESOLVE.format(detail=detail))
        return version
    if FULL_SHA_RE.match(revision) or _is_truncated_sha(revision):
        return revision  # util/git LsRemote: a (truncated) commit SHA is assumed to exist
    sha = await repo.git.resolve(revision)
    if sha is None:
        detail = ERR_UNRESOLVED.format(revision=revision)
        raise ApiError(FAILED_PRECONDITION, ERR_RESOLVE.format(detail=detail))
    return sha


def _is_truncated_sha(revision: str) -> bool:
    return 7 <= len(revision) < 40 and all(c in "0123456789abcdef" for c in revision)


def error_response(code: int, message: str) -> web.Response:
    """A grpc-gateway v1 error body, with the HTTP status grpc-gateway maps the gRPC code to."""
    body = {"error": message, "code": code, "message": message}
    return web.json_response(body, status=HTTP_STATUS.get(code, 500))
