"""Comment commands, pure: the grammar, the table that parses and documents them, who may run them.

Belongs here: reading a comment body into a ``Command`` (or a ``CommandError`` to answer, or None when the
comment is not addressed to Ferry), the command table that ``/help`` and ``docs/commands.md`` are rendered
from, permission rules as functions over plain values, and choosing a freight by what a person typed.
The wiring (webhooks, look-ups, replies, the ``/status`` page) is ``bot.command_runner``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from bot.core.freight import Freight
from bot.core.images import TAG_RE, normalise_name
from bot.core.pipeline import did_you_mean
from bot.errors import InvalidReferenceError

# Bounds: a comment is untrusted input of any size; Ferry reads only this much of its command line.
MAX_LINE_CHARS = 1000
MAX_ARGUMENT_CHARS = 300
MAX_ARGUMENTS = 16
MAX_ECHO_CHARS = 60
FREIGHT_ID_RE = re.compile(r"^[0-9a-f]{12}$")
WRITE_PERMISSIONS = ("write", "maintain", "admin")
# Author associations that make a commenter part of the repository's organisation (fork rule).
MEMBER_ASSOCIATIONS = ("OWNER", "MEMBER")

NOT_ALLOWED = "@{login} has {permission} access to {repo}; {command} needs write, maintain or admin"
NOT_PROMOTER = (
    "only {promoters} may promote into `{stage}` (its `promoters` on {branch}); @{login} is not one"
)
FORK_REFUSED = (
    "this pull request comes from a fork and @{login} is not a member of {owner}; "
    "ask a member to comment on an issue or a commit instead"
)
UNKNOWN_STAGE = "there is no stage `{name}`{hint}; stages: {known}"
UNKNOWN_FLAG = "unknown option `{flag}` for /{command}"
MISSING_STAGE = "/{command} needs a stage"
TOO_MANY = "give one freight id or tag, or `<image>=<tag>` pairs, not {count} arguments"
MIXED = "give one freight id or tag, or only `<image>=<tag>` pairs; not both"
ROLLBACK_PAIRS = "/rollback takes a freight id or a tag, not `<image>=<tag>` pairs"
BAD_TAG = "`{tag}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)"
BAD_PAIR = "`{pair}` is not `<image>=<tag>`"
LINE_TOO_LONG = "the command line is {length} characters long; Ferry reads at most {limit}"
ARGUMENT_TOO_LONG = "an argument is {length} characters long; at most {limit}"
TOO_MANY_ARGUMENTS = "{count} arguments; at most {limit}"
UNREADABLE = "cannot read the arguments ({error}); quote them as in a shell"
FLAG_NEEDS_VALUE = "`--{flag}` needs a value"

_COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_COMMAND_RE = re.compile(r"^ {0,3}/(?P<word>[A-Za-z][A-Za-z0-9_-]*)(?:\s+(?P<rest>.*))?$")


@dataclass(frozen=True)
class Selector:
    """What a person named: a freight id or a tag, or tags per image; empty means the default."""

    freight_or_tag: str | None = None
    images: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return self.freight_or_tag is None and not self.images

    def describe(self) -> str:
        if self.freight_or_tag is not None:
            return f"`{self.freight_or_tag}`"
        return ", ".join(f"`{image}={tag}`" for image, tag in self.images)


@dataclass(frozen=True)
class Command:
    name: str  # promote | rollback | approve | status | help
    stage: str = ""
    selector: Selector = field(default_factory=Selector)
    reason: str = ""

    @property
    def text(self) -> str:
        parts = [f"/{self.name}", self.stage]
        if self.selector.freight_or_tag:
            parts.append(self.selector.freight_or_tag)
        parts += [f"{image}={tag}" for image, tag in self.selector.images]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class CommandError:
    """A comment addressed to Ferry that it cannot read: answered with ``message`` and the usage."""

    name: str
    message: str

    @property
    def usage(self) -> str:
        return SPECS[self.name].usage


@dataclass(frozen=True)
class CommandSpec:
    """One row of the command table: how a command is written, what it does, how it is read."""

    name: str
    usage: str
    summary: str
    details: str
    mutates: bool
    parse: Callable[[str, list[str]], Command | CommandError]


def echo(text: str) -> str:
    """A person's text, safe to quote back inside backticks: one line, no backticks, bounded."""
    flat = " ".join(text.replace("`", "'").split())
    return flat if len(flat) <= MAX_ECHO_CHARS else flat[: MAX_ECHO_CHARS - 1] + "…"


def _options(name: str, tokens: list[str]) -> tuple[list[str], str] | CommandError:
    """Split ``--reason <text>`` (or ``--reason=<text>``) from the positional arguments."""
    positional: list[str] = []
    reason = ""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token.startswith("-") and token != "-":
            flag, sep, value = token.lstrip("-").partition("=")
            if flag != "reason":
                return CommandError(name, UNKNOWN_FLAG.format(flag=echo(token), command=name))
            if not sep:
                if index >= len(tokens):
                    return CommandError(name, FLAG_NEEDS_VALUE.format(flag=flag))
                value = tokens[index]
                index += 1
            reason = value
        else:
            positional.append(token)
    return positional, reason


def _check_tag(name: str, tag: str) -> CommandError | None:
    return None if TAG_RE.match(tag) else CommandError(name, BAD_TAG.format(tag=echo(tag)))


def _parse_move(name: str, tokens: list[str], *, pairs_allowed: bool) -> Command | CommandError:
    split = _options(name, tokens)
    if isinstance(split, CommandError):
        return split
    positional, reason = split
    if not positional:
        return CommandError(name, MISSING_STAGE.format(command=name))
    stage, rest = positional[0], positional[1:]
    pairs = [token for token in rest if "=" in token]
    if pairs and not pairs_allowed:
        return CommandError(name, ROLLBACK_PAIRS)
    if pairs and len(pairs) != len(rest):
        return CommandError(name, MIXED)
    if pairs:
        images = []
        for pair in pairs:
            image, _, tag = pair.partition("=")
            if not image or not tag:
                return CommandError(name, BAD_PAIR.format(pair=echo(pair)))
            error = _check_tag(name, tag)
            if error is not None:
                return error
            images.append((image, tag))
        return Command(name, stage, Selector(images=tuple(images)), reason)
    if len(rest) > 1:
        return CommandError(name, TOO_MANY.format(count=len(rest)))
    if rest:
        error = _check_tag(name, rest[0])
        if error is not None:
            return error
        return Command(name, stage, Selector(freight_or_tag=rest[0]), reason)
    return Command(name, stage, Selector(), reason)


def _parse_promote(name: str, tokens: list[str]) -> Command | CommandError:
    return _parse_move(name, tokens, pairs_allowed=True)


def _parse_rollback(name: str, tokens: list[str]) -> Command | CommandError:
    return _parse_move(name, tokens, pairs_allowed=False)


def _parse_plain(name: str, tokens: list[str]) -> Command | CommandError:
    return Command(name)  # words after /status or /help are conversation, not arguments


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "promote",
        "/promote <stage> [<freight-id> | <tag> | <image>=<tag> ...] [--reason <text>]",
        "Open a pull request that moves a stage to a freight.",
        "Without a freight: the freight verified in every upstream stage, or the warehouse's newest for "
        "a stage fed by a warehouse. The freight is resolved to digests when you comment; Ferry refuses "
        "when it is not verified in every upstream stage, and says which stage is missing.",
        True,
        _parse_promote,
    ),
    CommandSpec(
        "rollback",
        "/rollback <stage> [<freight-id> | <tag>] [--reason <text>]",
        "Open a pull request that returns a stage to a freight it ran before.",
        "Without a freight: the last freight verified in that stage before the current one (from its "
        "merged promotions and their `ferry/health/<stage>` statuses). Skips the upstream gate, never "
        "the permission check; the pull request is labelled `rollback`.",
        True,
        _parse_rollback,
    ),
    CommandSpec(
        "approve",
        "/approve",
        "Approve the promotion pull request this comment is on, for a stage with `promoters`.",
        "Counts as your approving review of its current head commit (a commit pushed later needs a new "
        "approval); only members of the stage's `promoters` may approve, never the pull request's author. "
        "Until a promoter approves, `ferry/gate` stays pending.",
        True,
        _parse_plain,
    ),
    CommandSpec(
        "status",
        "/status",
        "Show every stage: freight, images, verdict, since when, open pull requests, a diagram, and each "
        "stage's delivery figures over 7 and 30 days.",
        "Read only; anyone who can comment may ask.",
        False,
        _parse_plain,
    ),
    CommandSpec(
        "help",
        "/help",
        "Show this list.",
        "Read only; anyone who can comment may ask.",
        False,
        _parse_plain,
    ),
)
SPECS = {spec.name: spec for spec in COMMANDS}


def command_line(body: str) -> str | None:
    """The first non-empty line once HTML comments, fenced code blocks and ``>`` quotes are removed."""
    text = _COMMENT_RE.sub("", body.replace("\r\n", "\n").replace("\r", "\n"))
    fence: str | None = None
    for line in text.split("\n"):
        opening = _FENCE_RE.match(line)
        if fence is not None:
            if opening and opening[1][0] == fence[0] and len(opening[1]) >= len(fence):
                fence = None
            continue
        if opening:
            fence = opening[1]
            continue
        if line.lstrip().startswith(">") or not line.strip():
            continue
        return line.rstrip()
    return None


def parse_comment(body: str) -> Command | CommandError | None:
    """The command a comment gives Ferry; None when it gives none (prose, another bot's command)."""
    line = command_line(body)
    if line is None:
        return None
    match = _COMMAND_RE.match(line)
    if match is None:
        return None
    name = match["word"].lower()
    spec = SPECS.get(name)
    if spec is None:
        return None  # Ferry's commands have no prefix: an unknown word may be another bot's
    if len(line) > MAX_LINE_CHARS:
        return CommandError(name, LINE_TOO_LONG.format(length=len(line), limit=MAX_LINE_CHARS))
    try:
        tokens = shlex.split(match["rest"] or "", comments=False, posix=True)
    except ValueError as exc:
        return CommandError(name, UNREADABLE.format(error=echo(str(exc)).lower()))
    if len(tokens) > MAX_ARGUMENTS and spec.mutates:
        return CommandError(name, TOO_MANY_ARGUMENTS.format(count=len(tokens), limit=MAX_ARGUMENTS))
    longest = max((len(t) for t in tokens), default=0)
    if longest > MAX_ARGUMENT_CHARS and spec.mutates:
        return CommandError(name, ARGUMENT_TOO_LONG.format(length=longest, limit=MAX_ARGUMENT_CHARS))
    return spec.parse(name, tokens)


# ---- what people read ----------------------------------------------------------------------------
HELP_TITLE = "**Ferry commands**"
HELP_FOOTER = (
    "Comment on a pull request, an issue or a commit; the command is the first line that is not a "
    "quote or code. Ferry reacts 👀 at once, then 🚀 with a link to the pull request it opened, or 😕 "
    "with the reason it refused. `/promote`, `/rollback` and `/approve` need write access, and for a "
    "stage with `promoters` membership of one of them (read from the default branch). Bots are never obeyed. "
    "An edited comment is not a command: post a new one. A command Ferry could not answer at once (it "
    "was stopped, or GitHub was unreachable) is answered when it can; a `/promote` or `/rollback` "
    "older than `FERRY_COMMAND_MAX_AGE` (1 h by default) is then answered as expired, not run."
)
DOCS_TITLE = "# Comment commands"
DOCS_INTRO = (
    "Generated from the table in `bot/commands.py` that also parses the commands and answers `/help`. "
    "Regenerate with `python -c 'import bot.commands as c; print(c.render_docs(), end=\"\")' "
    "> docs/commands.md`."
)


def _table() -> list[str]:
    rows = ["| command | what it does |", "| --- | --- |"]
    for spec in COMMANDS:
        usage = spec.usage.replace("|", "\\|")
        rows.append(f"| `{usage}` | {spec.summary} {spec.details} |")
    return rows


def render_help() -> str:
    return "\n".join([HELP_TITLE, "", *_table(), "", HELP_FOOTER])


def render_docs() -> str:
    return "\n".join([DOCS_TITLE, "", DOCS_INTRO, "", *_table(), "", HELP_FOOTER]) + "\n"


def render_reference() -> str:
    """The command table and how commands are answered: the README's section, the same words as /help."""
    return "\n".join([*_table(), "", HELP_FOOTER]) + "\n"


def render_error(error: CommandError) -> str:
    return f"{error.message}. Usage:\n\n```\n{error.usage}\n```"


def unknown_stage(name: str, stages: Sequence[str]) -> str:
    return UNKNOWN_STAGE.format(
        name=echo(name), hint=did_you_mean(name, stages), known=", ".join(f"`{s}`" for s in stages)
    )


# ---- who may run a command -----------------------------------------------------------------------
def is_bot(login: str, account_type: str) -> bool:
    return account_type == "Bot" or login.lower().endswith("[bot]")


def promoter_teams(promoters: Sequence[str]) -> list[tuple[str, str]]:
    """The ``@org/team`` entries of a stage's promoters, as (org, team slug)."""
    teams = []
    for entry in promoters:
        if entry.startswith("@") and "/" in entry:
            org, _, team = entry[1:].partition("/")
            teams.append((org, team))
    return teams


def is_promoter(login: str, promoters: Sequence[str], member_of: Collection[str]) -> bool:
    """Listed by login (case-insensitive), or a member of a listed team (``member_of``: "org/team")."""
    logins = {p.lower() for p in promoters if not p.startswith("@")}
    if login.lower() in logins:
        return True
    return any(f"{org}/{team}" in member_of for org, team in promoter_teams(promoters))


@dataclass(frozen=True)
class Asker:
    """The person who commented, with what GitHub said about them."""

    login: str
    permission: str  # admin | maintain | write | triage | read | none
    association: str = "NONE"  # the comment's author_association (only the fork rule uses it)
    member_of: frozenset[str] = frozenset()  # "org/team" of the stage's promoter teams they are in


def refusal(
    command: Command,
    asker: Asker,
    *,
    repo: str,
    promoters: Sequence[str],
    on_fork_pull: bool,
    default_branch: str,
) -> str | None:
    """Why ``asker`` may not run ``command`` on a stage, or None when they may."""
    if not SPECS[command.name].mutates:
        return None
    if asker.permission not in WRITE_PERMISSIONS:
        return NOT_ALLOWED.format(
            login=asker.login, permission=asker.permission, repo=repo, command=f"/{command.name}"
        )
    if on_fork_pull and asker.association not in MEMBER_ASSOCIATIONS:
        return FORK_REFUSED.format(login=asker.login, owner=repo.partition("/")[0])
    if promoters and not is_promoter(asker.login, promoters, asker.member_of):
        who = ", ".join(f"`{p}`" for p in promoters)
        return NOT_PROMOTER.format(
            promoters=who, stage=command.stage, branch=default_branch, login=asker.login
        )
    return None


# ---- which freight a person means ----------------------------------------------------------------
def _image_matches(image: str, typed: str) -> bool:
    """``web``, ``acme/web`` and ``ghcr.io/acme/web`` all name ``ghcr.io/acme/web``."""
    typed = typed.lower()
    if image == typed or image.endswith("/" + typed):
        return True
    try:
        return image == normalise_name(typed)
    except InvalidReferenceError:
        return False


def matches(freight: Freight, selector: Selector) -> bool:
    if selector.freight_or_tag is not None:
        wanted = selector.freight_or_tag
        return freight.id == wanted.lower() or any(i.tag == wanted for i in freight.images)
    return all(
        any(_image_matches(i.image, image) and i.tag == tag for i in freight.images)
        for image, tag in selector.images
    )


def pick(selector: Selector, candidates: Sequence[Freight]) -> Freight | None:
    """The first candidate (best first) the selector names; a freight id wins over a tag."""
    if selector.freight_or_tag and FREIGHT_ID_RE.match(selector.freight_or_tag.lower()):
        by_id = next((f for f in candidates if f.id == selector.freight_or_tag.lower()), None)
        if by_id is not None:
            return by_id
    return next((f for f in candidates if matches(f, selector)), None)


def unique(freights: Sequence[Freight | None]) -> list[Freight]:
    seen: dict[str, Freight] = {}
    for freight in freights:
        if freight is not None and freight.id not in seen:
            seen[freight.id] = freight
    return list(seen.values())
