"""The App's webhook as GitHub shows it to the App (JWT): its configuration and its recent deliveries.

- ``GET /app/hook/config`` ("Get a webhook configuration for an app", docs.github.com/en/rest/apps/webhooks):
  ``url``, ``content_type``, ``insecure_ssl`` and the ``secret`` masked as ``********``.
- ``GET /app/hook/deliveries`` ("List deliveries for an app webhook"): newest first, each with ``guid``
  (the ``X-GitHub-Delivery``), ``delivered_at``, ``redelivery``, ``status`` ("OK", or why not: "Invalid HTTP
  Response: 502"; a receiver that cannot be reached has ``status_code`` 0) and ``status_code``. GitHub pages
  this list by cursor; the stand-in serves the first ``per_page`` (default 30, at most 100) and no cursor.
  ``status=success`` keeps deliveries whose ``status_code`` is 200–399, ``status=failure`` those in 400–599
  (the description's ``webhook-delivery-status`` parameter): a receiver that could not be reached (0) is in
  neither. Another ``status`` is a 422, as any value outside a parameter's enum.
"""

from __future__ import annotations

from aiohttp import web

from bot.sandbox.github_ops import ApiError, GitHubOps, invalid, json_response
from bot.sandbox.github_shapes import Json, iso
from bot.sandbox.github_state import Delivery
from bot.sandbox.github_webhooks import WebhookSender

UNREACHABLE = "failed to connect to host"
OUTCOMES = {"success": range(200, 400), "failure": range(400, 600)}


class HookRoutes:
    def __init__(self, ops: GitHubOps, sender: WebhookSender) -> None:
        self.ops = ops
        self.sender = sender

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/app/hook/config", self.config)
        router.add_get("/app/hook/deliveries", self.deliveries)

    async def config(self, request: web.Request) -> web.Response:
        url = self.sender.url or (self.sender.options.replicas[:1] or [""])[0]
        return json_response({"content_type": "json", "secret": "********", "url": url, "insecure_ssl": "0"})

    async def deliveries(self, request: web.Request) -> web.Response:
        try:
            per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
        except ValueError as exc:
            raise ApiError(422, "Invalid pagination parameters") from exc
        outcome = request.query.get("status")
        if outcome is not None and outcome not in OUTCOMES:
            raise invalid(f"status must be one of {', '.join(OUTCOMES)}", "Delivery", "status")
        numbered = list(enumerate(reversed(self.sender.deliveries)))
        if outcome is not None:
            numbered = [(n, d) for n, d in numbered if (d.status or 0) in OUTCOMES[outcome]]
        return json_response([self._item(number, d) for number, d in numbered[:per_page]])

    def _item(self, number: int, delivery: Delivery) -> Json:
        code = delivery.status or 0
        if 200 <= code < 300:
            status = "OK"
        elif code:
            status = f"Invalid HTTP Response: {code}"
        else:
            status = UNREACHABLE
        site = self.ops.site
        return {
            "id": len(self.sender.deliveries) - number,
            "guid": delivery.delivery_id,
            "delivered_at": iso(delivery.time),
            "redelivery": delivery.redelivery,
            "duration": 0.01,
            "status": status,
            "status_code": code,
            "event": delivery.event,
            "action": delivery.action,
            "installation_id": site.installation_id,
            "repository_id": site.repo_id,
        }
