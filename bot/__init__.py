"""Ferry: promote container images through environments with pull requests, the GitOps way.

Layout (dependencies point downward only; import-linter guards it):

- ``bot.cli``         command line entry points
- ``bot.server``      aiohttp app: webhooks, health, metrics
- ``bot.reconciler``  observe -> decide -> act, per repository
- ``bot.github``, ``bot.argocd``, ``bot.registry``  adapters, one per outside system
- ``bot.commands``    comment grammar and permission rules (pure)
- ``bot.core``        pure decisions over plain data
- ``bot.sandbox``     offline stand-ins for GitHub, Argo CD and a registry
"""

__version__ = "0.1.0"
