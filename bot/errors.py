"""Ferry's one exception tree.

Every message names the subject, the source and the fix, e.g.
``stage "prod": image "ghcr.io/acme/web" has no tag matching ">=2.0.0" (newest: 1.9.3)``.

::

    FerryError                      anything Ferry reports to a person
    ├── ConfigError                 the pipeline config is invalid; carries every Problem at once
    ├── SettingsError               the App's own settings (environment, settings file) are missing or bad
    ├── InvalidReferenceError       an image reference, tag or digest is malformed
    ├── ManifestError               a file to bump is malformed, or does not hold the image
    ├── SelectionError              a tag rule is malformed, or no tag qualifies
    └── ExternalError               a registry, GitHub or Argo CD call failed
        ├── RegistryError
        ├── GitHubError
        └── ArgoCDError

``ExternalError.temporary`` classifies the failure: temporary ones (5xx, 429, secondary rate
limits, timeouts) may be retried after ``retry_after`` seconds by the one place that retries;
permanent ones (other 4xx) are reported and not retried.
"""

from __future__ import annotations

from dataclasses import dataclass


class FerryError(Exception):
    """Base of every error Ferry reports to a person."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a file, located precisely (line and column are 1-based; 0 = unknown)."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.column or 1}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class ConfigError(FerryError):
    """The pipeline config is invalid. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SettingsError(FerryError):
    """A setting of the App itself is missing or malformed; the message names the variable."""


class InvalidReferenceError(FerryError):
    """An image reference, tag or digest is malformed."""


class ManifestError(FerryError):
    """A file to bump is malformed or does not hold the image asked for."""


class SelectionError(FerryError):
    """A tag selection rule is malformed, or no tag qualifies."""


class ExternalError(FerryError):
    """A call to an outside system failed.

    ``temporary`` says whether retrying later may help; ``retry_after`` is the delay the
    outside system asked for (seconds), when it said one.
    """

    def __init__(self, message: str, *, temporary: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.temporary = temporary
        self.retry_after = retry_after


class RegistryError(ExternalError):
    """An OCI registry call failed."""


class GitHubError(ExternalError):
    """A GitHub API call failed."""


class ArgoCDError(ExternalError):
    """An Argo CD API call failed."""
