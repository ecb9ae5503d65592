"""Offline stand-ins for GitHub, Argo CD and a registry, for ``ferry sandbox`` and end-to-end tests.

Everything here listens on 127.0.0.1 and needs nothing from the internet. The GitHub stand-in
(``github_standin``) serves the REST endpoints Ferry uses over a real bare git repository on disk
(``gitstore``) and sends signed webhooks shaped like GitHub's; its parts are ``github_pipeline`` (auth,
faults, rate limits, ETags), ``github_routes_*``, ``github_shapes``/``github_issue_shapes``/
``github_payloads`` (bodies) and ``github_webhooks`` (deliveries).
"""
