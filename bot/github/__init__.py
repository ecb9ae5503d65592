"""The GitHub adapter, on githubkit: App auth, reads for a reconcile pass, and idempotent writes.

The REST API version is pinned to 2022-11-28 (newer models lack ``merge_commit_sha``).
githubkit's own retries are off: failures become ``GitHubError`` classified temporary or
permanent by GitHub's rules (``bot.core.backoff``), and the reconciler is the one place that
retries. One connection pool serves the whole process; every request has a deadline, writes go one
at a time per installation, and a rate-limited installation is left alone until its wait is over
(``bot.github.client``).
"""
