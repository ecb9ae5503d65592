"""Every open pull request of one repository, the files one changes, and the App's one marked comment
on it, edited in place. A mixin of ``RepoGitHub`` (used by ``bot.config_prs``).

Lists are read to their end (``RepoComments._every_page``). ``GET /pulls/{n}/files`` lists at most 3000
files (docs.github.com/en/rest/pulls/pulls#list-pull-requests-files); a pull request changing more is
read as far as GitHub lists it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.command_replies import written_by_app
from bot.errors import GitHubError
from bot.github.client import call, status_of
from bot.github.deployments import RepoDeployments


@dataclass(frozen=True)
class OpenPull:
    """An open pull request as ``GET /pulls`` lists it: number, head commit and branch, link."""

    number: int
    head_sha: str
    head_ref: str
    url: str


class RepoPulls(RepoDeployments):
    async def open_pulls(self) -> list[OpenPull]:
        """Every open pull request, people's and Ferry's, from forks too (every page)."""
        items = await self._every_page(
            f"listing open pull requests of {self.full_name}",
            self.rest.pulls.async_list,
            owner=self.owner,
            repo=self.name,
            state="open",
        )
        return [OpenPull(int(p.number), str(p.head.sha), str(p.head.ref), str(p.html_url)) for p in items]

    async def open_pull_head(self, number: int) -> str | None:
        """The head commit of pull request ``number`` now; None once it is closed, merged or gone."""
        try:
            pull = await call(f"reading #{number}", self.rest.pulls.async_get(self.owner, self.name, number))
        except GitHubError as exc:
            if isinstance(exc.__cause__, Exception) and status_of(exc.__cause__) == 404:
                return None
            raise
        data = pull.parsed_data
        return str(data.head.sha) if data.state == "open" else None

    async def pull_changes(self, number: int, path: str) -> bool:
        """Whether pull request ``number`` adds, changes, renames or removes ``path`` (every page)."""
        files = await self._every_page(
            f"listing the files #{number} changes",
            self.rest.pulls.async_list_files,
            owner=self.owner,
            repo=self.name,
            pull_number=number,
        )
        return any(path in (f.filename, getattr(f, "previous_filename", None)) for f in files)

    async def marked_comment(self, number: int, body: str, *, marker: str, create: bool) -> str | None:
        """Make the App's comment carrying ``marker`` on ``number`` read ``body``: edited when it differs,
        posted only when there is none and ``create``; returns its link (None: there is none).

        Only a comment the App wrote counts (``written_by_app``): a person quoting the marker is not edited.
        """
        app = await self.app()
        thread = await self.thread_comments(number)
        mine = next((c for c in thread if marker in c.body and written_by_app(c, app)), None)
        if mine is None:
            if not create:
                return None
            made = await call(
                f"commenting on #{number}",
                self.rest.issues.async_create_comment(self.owner, self.name, number, data={"body": body}),
            )
            return str(made.parsed_data.html_url)
        if mine.body.strip() != body.strip():
            await call(
                f"editing comment {mine.comment_id} on #{number}",
                self.rest.issues.async_update_comment(
                    self.owner, self.name, mine.comment_id, data={"body": body}
                ),
            )
        return mine.url
