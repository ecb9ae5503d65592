"""Bodies of GitHub's Deployments API (schemas ``deployment``, ``deployment-status``, ``environment``) and
of the ``deployment`` and ``deployment_status`` webhooks, as API version 2022-11-28 returns and sends them
(docs.github.com/en/rest/deployments, docs.github.com/en/webhooks/webhook-events-and-payloads#deployment).

Pure builders from the stand-in's records (``github_records``).
"""

from __future__ import annotations

from bot.sandbox import github_payloads as payloads
from bot.sandbox.github_records import DeploymentRecord, DeploymentStatusRecord, EnvironmentRecord
from bot.sandbox.github_shapes import Json, iso, node_id, repository, user
from bot.sandbox.github_state import BOT_LOGIN, Account, Site


def _via_app(site: Site, owner: Account, creator: Account) -> Json | None:
    """``performed_via_github_app``: the App when its installation made the object, else null."""
    return payloads.app(site, owner) if creator.login == BOT_LOGIN else None


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
        "deployment": deployment_body,
        "workflow": None,
        "workflow_run": None,
        "repository": repository(site, owner),
        "sender": user(site, sender),
        "installation": payloads.installation_ref(site),
    }


def deployment_status_event(
    site: Site, owner: Account, sender: Account, status_body: Json, deployment_body: Json
) -> Json:
    """``deployment_status`` webhook, action ``created`` (GitHub sends none for ``inactive``)."""
    return {
        "action": "created",
        "deployment_status": status_body,
        "deployment": deployment_body,
        "check_run": None,
        "workflow": None,
        "workflow_run": None,
        "repository": repository(site, owner),
        "sender": user(site, sender),
        "installation": payloads.installation_ref(site),
    }
