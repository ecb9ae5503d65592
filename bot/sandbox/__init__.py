"""Offline stand-ins for GitHub, Argo CD and a registry, for ``ferry sandbox`` and end-to-end tests.

Everything here listens on 127.0.0.1 and needs nothing from the internet.

- GitHub (``github_standin``): the REST endpoints Ferry uses over a real bare git repository on disk
  (``gitstore``), sending signed webhooks shaped like GitHub's; its parts are ``github_pipeline`` (auth,
  faults, App permissions and secondary limits from ``github_limits``, rate limits, ETags),
  ``github_routes_*`` (git, pulls, reviews and branch protection, issues, comments, deployments, App),
  ``github_shapes``/``github_issue_shapes``/``github_deploy_shapes``/``github_payloads`` (bodies),
  ``github_webhooks`` (deliveries), ``github_state``/``github_records`` (what it remembers) with
  ``github_lag`` (lists that lag writes). ``github_controls`` holds the knobs that make it as unkind as
  GitHub (late, reordered, duplicated deliveries to replicas; list lag; secondary limits; merge settings;
  branch protection; App permissions): all off unless a test or scenario turns them on.
- Argo CD (``argocd_standin``, bodies in ``argocd_shapes``): applications that "deploy" what the git
  repository holds at the synced revision; Degraded when an image tag contains ``-broken``.
- Registry (``registry_standin``): tag lists and manifest digests of the OCI distribution API.
- The world (``world``): the three stand-ins plus the real Ferry; ``example`` builds its GitOps repository
  from config/example/, ``scenarios``/``run`` play and summarise what ``ferry sandbox`` shows.
"""
