"""Bodies of GitHub's Deployments API (schemas ``deployment``, ``deployment-status``, ``environment``) and
of the ``deployment`` and ``deployment_status`` webhooks, as API version 2022-11-28 returns and sends them
(docs.github.com/en/rest/deployments, docs.github.com/en/webhooks/webhook-events-and-payloads#deployment).

Pure builders from the stand-in's records (``github_records``).
"""

from __future__ import annotations

from bot.sandbox import github_payloads as payloads
from bot.sandbox.github_records import DeploymentRecord, DeploymentStatusRecord, EnvironmentRecord
from bot.sandbox.github_shapes import Json, iso, node_id, user, webhook_repository
from bot.sandbox.github_state import BOT_LOGIN, Account, Site


def _via_app(site: Site, owner: Account, creator: Account) -> Json | None:
    """``performed_via_github_app``: the App when its installation made the object, else null. Without
    ``installations_count``, which GitHub's description (``integration``) says is "Only returned when the
    integration is requesting details about itself" (``GET /app``)."""
    if creator.login != BOT_LOGIN:
        return None
    body = payloads.app(site, owner)
    del body["installations_count"]
    return body


def _in_webhook(body: Json) -> Json:
    """A deployment or deployment status as the webhooks carry it: their ``performed_via_github_app`` has
    no ``client_id`` (GitHub's description: ``webhook-deployment-created`` and
    ``webhook-deployment-status-created`` name every other key of ``nullable-integration``, not that one)."""
    app = body["performed_via_github_app"]
    if app is None:
        return body
    return body | {"performed_via_github_app": {k: v for k, v in app.items() if k != "client_id"}}


def deployment(site: Site, record: DeploymentRecord, creator: Account, owner: Account) -> Json:
    url = f"{site.repo_api}/deployments/{record.id}"
    return {
        "url": url,
        "id": record.id,
        "node_id": node_id("Deployment", record.id),
        "sha": record.sha,
        "ref": record.ref,
        "task": record.task,
        "payload": record.payload,
        "original_environment": record.original_environment,
        "environment": record.environment,
        "description": record.description,
        "creator": user(site, creator),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "statuses_url": f"{url}/statuses",
        "repository_url": site.repo_api,
        "transient_environment": record.transient_environment,
        "production_environment": record.production_environment,
        "performed_via_github_app": _via_app(site, owner, creator),
    }


def deployment_status(
    site: Site, deployment_id: int, record: DeploymentStatusRecord, creator: Account, owner: Account
) -> Json:
    deployment_url = f"{site.repo_api}/deployments/{deployment_id}"
    return {
        "url": f"{deployment_url}/statuses/{record.id}",
        "id": record.id,
        "node_id": node_id("DeploymentStatus", record.id),
        "state": record.state,
        "creator": user(site, creator),
        "description": record.description,
        "environment": record.environment,
        "target_url": record.target_url,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.created_at),
        "deployment_url": deployment_url,
        "repository_url": site.repo_api,
        "environment_url": record.environment_url,
        "log_url": record.log_url,
        "performed_via_github_app": _via_app(site, owner, creator),
    }


def environment(site: Site, record: EnvironmentRecord) -> Json:
    return {
        "id": record.id,
        "node_id": node_id("Environment", record.id),
        "name": record.name,
        "url": f"{site.repo_api}/environments/{record.name}",
        "html_url": f"{site.repo_html}/deployments/activity_log?environments_filter={record.name}",
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "protection_rules": [],
        "deployment_branch_policy": None,
    }


def deployment_event(site: Site, owner: Account, sender: Account, deployment_body: Json) -> Json:
    """``deployment`` webhook, action ``created``; ``workflow``/``workflow_run`` are null unless Actions
    made the deployment."""
    return {
        "action": "created",
        "deployment": _in_webhook(deployment_body),
        "workflow": None,
        "workflow_run": None,
        "repository": webhook_repository(site, owner),
        **payloads.organization(site, owner),
        "sender": user(site, sender),
        "installation": payloads.installation_ref(site),
    }


def deployment_status_event(
    site: Site, owner: Account, sender: Account, status_body: Json, deployment_body: Json
) -> Json:
    """``deployment_status`` webhook, action ``created`` (GitHub sends none for ``inactive``)."""
    return {
        "action": "created",
        "deployment_status": _in_webhook(status_body),
        "deployment": _in_webhook(deployment_body),
        "check_run": None,
        "workflow": None,
        "workflow_run": None,
        "repository": webhook_repository(site, owner),
        **payloads.organization(site, owner),
        "sender": user(site, sender),
        "installation": payloads.installation_ref(site),
    }
