"""The pipeline config (``.github/ferry.yml`` in a GitOps repo) as pydantic models.

The models hold every rule that one field, one item or the stage graph can check, so a
``PipelineConfig`` built in Python is as valid as one read from YAML. Reading YAML text and
locating each error at its line and column is ``bot.core.config_load``'s job. Errors raised here
are ``PydanticCustomError`` with optional context: ``at`` (a path below the error's location that
names the offending key or item) and ``offset`` (a character offset inside the offending scalar).
The messages, the checked string types and the error helper are in ``bot.core.config_fields``;
every name there is re-exported here.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Every name of config_fields (messages, checked field types) stays importable from here.
from bot.core.config_fields import *  # noqa: F403
from bot.core.config_fields import (
    ARGOCD_BOTH,
    ARGOCD_NEITHER,
    BAD_VERSION,
    DUPLICATE_IMAGE,
    FROM_BOTH,
    FROM_NEITHER,
    MANY_RULES,
    NAME_RE,
    NO_RULE,
    NOT_POSITIVE,
    STRICT_WITHOUT_SEMVER,
    UPDATE_KIND,
    DottedPath,
    Name,
    Promoter,
    Regex,
    RepoPath,
    config_error,
)
from bot.core.durations import Duration, format_duration
from bot.core.images import check_tag, parse_image
from bot.core.pipeline import graph_problems, links_of
from bot.core.semver_range import parse_constraint
from bot.errors import InvalidReferenceError, SelectionError

CONFIG_PATH = ".github/ferry.yml"
SUPPORTED_VERSIONS = (1,)
SCHEMA_ID = "urn:ferry:schema:pipeline-config:1"
SCHEMA_TITLE = "Ferry pipeline config (.github/ferry.yml)"
# Validation context key: config_load checks the graph on the raw YAML (so it reports every problem
# with its position) and asks the models not to repeat that check.
SKIP_GRAPH_CHECK = "ferry_skip_graph_check"

SELECTION_RULES = ("semver", "lexical", "numeric", "digest")


def _duration_field(default: timedelta, description: str) -> Any:
    # The schema shows the default as people write it ("5m"), not as ISO 8601 ("PT5M").
    return Field(default, description=description, json_schema_extra={"default": format_duration(default)})


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class ImageRule(_Model):
    """One image repository a warehouse watches, and the rule that picks its tags."""

    image: str = Field(description="Image repository without tag or digest, e.g. `ghcr.io/acme/web`.")
    semver: str | None = Field(None, description='Semantic version range, e.g. `">=1.0.0 <2.0.0"`.')
    lexical: bool = Field(False, description="Pick the lexically greatest tag (e.g. date stamps).")
    numeric: bool = Field(
        False,
        description=(
            "Pick the numerically greatest tag (e.g. build numbers); with named groups in `allow`, compare "
            "the groups in order, each as numbers split on `.`, `-` or `_` (e.g. `v2026-1-30-2`)."
        ),
    )
    digest: str | None = Field(None, description="Follow the digest of this mutable tag, e.g. `latest`.")
    allow: Regex | None = Field(
        None, description="Only tags matching this regex; a named group `version` picks the part to compare."
    )
    ignore: list[Regex] = Field(default_factory=list, description="Skip tags matching any of these regexes.")
    prerelease: bool = Field(False, description="Let semver ranges match pre-releases such as `1.2.0-rc.1`.")
    semver_strict: bool = Field(
        True,
        description=(
            "Read tags as versions only when they are `[v]X.Y.Z` (Kargo's `strictSemvers`); `false` also "
            "reads `v1.2` as 1.2.0, `2024.01.15` as 2024.1.15 and a numeric commit sha `40213377` as "
            "40213377.0.0. Semver rules only."
        ),
    )

    @field_validator("image")
    @classmethod
    def _image_without_tag(cls, value: str) -> str:
        try:
            parse_image(value, allow_tag=False)
        except InvalidReferenceError as exc:
            raise config_error("image", str(exc)) from None
        return value

    @field_validator("semver")
    @classmethod
    def _semver_range(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parse_constraint(value)
        except SelectionError as exc:
            raise config_error("semver", str(exc)) from None
        return value

    @field_validator("digest")
    @classmethod
    def _mutable_tag(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_tag(value)
            except InvalidReferenceError as exc:
                raise config_error("tag", str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> ImageRule:
        given = [rule for rule in SELECTION_RULES if getattr(self, rule) not in (None, False)]
        if not given:
            raise config_error(
                "selection_rule", NO_RULE.format(image=f'"{self.image}"'), at=["image"], at_key=True
            )
        if len(given) > 1:
            raise config_error(
                "selection_rule", MANY_RULES.format(found=" and ".join(given)), at=[given[1]], at_key=True
            )
        if not self.semver_strict and given != ["semver"]:
            message = STRICT_WITHOUT_SEMVER.format(rule=given[0])
            raise config_error("semver_strict", message, at=["semver_strict"], at_key=True)
        return self

    @property
    def name(self) -> str:
        """The normalised repository name (``docker.io/library/nginx`` for ``nginx``)."""
        return parse_image(self.image).name

    @property
    def selection(self) -> str:
        """Which rule selects tags: ``semver``, ``lexical``, ``numeric`` or ``digest``."""
        return next(rule for rule in SELECTION_RULES if getattr(self, rule) not in (None, False))


class Warehouse(_Model):
    """A named set of image repositories that move together as one freight."""

    images: list[ImageRule] = Field(min_length=1, description="The images of this warehouse.")
    interval: Duration = _duration_field(
        timedelta(minutes=5), "How often to look for new tags when no registry event arrives."
    )

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise config_error("duration", NOT_POSITIVE)
        return value

    @model_validator(mode="after")
    def _distinct_images(self) -> Warehouse:
        seen: set[str] = set()
        for index, rule in enumerate(self.images):
            if rule.name in seen:
                raise config_error(
                    "duplicate", DUPLICATE_IMAGE.format(image=rule.image), at=["images", index, "image"]
                )
            seen.add(rule.name)
        return self


class WarehouseSource(_Model):
    """Take new freight straight from a warehouse."""

    warehouse: str = Field(description="Name of a warehouse under `warehouses`.")


class StagesSource(_Model):
    """Take freight once it is verified in every one of these stages."""

    stages: list[str] = Field(min_length=1, description="Names of upstream stages under `stages`.")


class KustomizeUpdate(_Model):
    """Set `newTag` (and a pinned `digest`) in the `images:` list of a kustomization."""

    kustomize: RepoPath = Field(description="A directory holding `kustomization.yaml`, or the file itself.")


class HelmUpdate(_Model):
    """Set image repository/tag/digest values in a Helm values file."""

    helm: RepoPath = Field(description="The values file, e.g. `charts/web/values-prod.yaml`.")
    repository: DottedPath | None = Field(
        None, description="Dotted path of the repository value; found when absent."
    )
    tag: DottedPath | None = Field(None, description="Dotted path of the tag value; found when absent.")
    digest: DottedPath | None = Field(
        None, description="Dotted path of the digest value, if the file pins one."
    )


class YamlUpdate(_Model):
    """Replace a whole image reference (`repo:tag[@digest]`) at a dotted path of any YAML file."""

    yaml: RepoPath = Field(description="The YAML file.")
    path: DottedPath = Field(description="Dotted path of the image reference string, e.g. `spec.image`.")


UPDATE_KINDS: dict[str, type[_Model]] = {
    "kustomize": KustomizeUpdate,
    "helm": HelmUpdate,
    "yaml": YamlUpdate,
}
SOURCE_KINDS: dict[str, type[_Model]] = {"warehouse": WarehouseSource, "stages": StagesSource}
# Tags of the tagged unions: class names, which can never collide with a YAML key.
UNION_TAGS: dict[str, type[BaseModel]] = {
    cls.__name__: cls for cls in (*UPDATE_KINDS.values(), *SOURCE_KINDS.values())
}


def _kind_of(kinds: dict[str, type[_Model]]) -> Any:
    def discriminate(value: Any) -> str | None:
        if isinstance(value, BaseModel):
            return type(value).__name__
        if not isinstance(value, dict):
            return None
        for key, cls in kinds.items():
            if key in value:
                return cls.__name__
        for key in value:  # a misspelt kind: let the model report the key with a suggestion
            close = difflib.get_close_matches(str(key), list(kinds), n=1, cutoff=0.6)
            if close:
                return kinds[close[0]].__name__
        return None

    return discriminate


UpdateTarget = KustomizeUpdate | HelmUpdate | YamlUpdate
_UpdateField = Annotated[
    Annotated[KustomizeUpdate, Tag("KustomizeUpdate")]
    | Annotated[HelmUpdate, Tag("HelmUpdate")]
    | Annotated[YamlUpdate, Tag("YamlUpdate")],
    Discriminator(_kind_of(UPDATE_KINDS), custom_error_type="update_kind", custom_error_message=UPDATE_KIND),
]
_SourceField = Annotated[
    Annotated[WarehouseSource, Tag("WarehouseSource")] | Annotated[StagesSource, Tag("StagesSource")],
    Discriminator(_kind_of(SOURCE_KINDS), custom_error_type="from_kind", custom_error_message=FROM_NEITHER),
]


class ArgoCDTarget(_Model):
    """The Argo CD application(s) that deploy a stage; Ferry syncs them and waits for health."""

    app: str | None = Field(None, description="Name of the Argo CD application.")
    apps: list[str] = Field(
        default_factory=list, description="Names of several applications, instead of `app`."
    )
    server: str = Field("default", description="Argo CD server, by its name in the App's own settings.")
    namespace: str | None = Field(
        None, description="Namespace of the Application resources, if not the default."
    )
    project: str | None = Field(None, description="Argo CD project the applications must belong to.")
    prune: bool = Field(False, description="Prune resources no longer in Git when syncing.")

    @model_validator(mode="after")
    def _names_an_app(self) -> ArgoCDTarget:
        if self.app is None and not self.apps:
            raise config_error("argocd_app", ARGOCD_NEITHER)
        if self.app is not None and self.apps:
            raise config_error("argocd_app", ARGOCD_BOTH, at=["apps"], at_key=True)
        return self

    @property
    def app_names(self) -> list[str]:
        return [self.app] if self.app is not None else list(self.apps)


class Verify(_Model):
    """How a promotion is verified once merged."""

    timeout: Duration = _duration_field(
        timedelta(minutes=15), "How long Argo CD may take to sync and report Healthy."
    )
    soak: Duration = _duration_field(timedelta(0), "How long the stage must then stay Healthy.")
    require_synced: bool = Field(
        False,
        description=(
            "Also require Argo CD's sync status `Synced`. Off by default: many healthy apps stay OutOfSync "
            "for good (mutating webhooks, HPA-managed replicas)."
        ),
    )
    on_failure: Literal["stop", "rollback"] = Field(
        "stop",
        description=(
            "What a failed verification does: `stop` (the stage keeps the failed freight until a person "
            "acts) or `rollback` (Ferry opens a rollback pull request to the last freight verified in the "
            "stage, and merges it when the stage has `auto_merge`; a failed rollback stops)."
        ),
    )

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise config_error("duration", NOT_POSITIVE)
        return value


class Stage(_Model):
    """One environment: where its freight comes from, which files hold it, what deploys it."""

    source: _SourceField = Field(
        alias="from",
        description="`{warehouse: <name>}` or `{stages: [<name>, ...]}`: where freight comes from.",
    )
    auto_promote: bool = Field(False, description="Open the promotion pull request when new freight appears.")
    auto_merge: bool = Field(False, description="Merge the promotion pull request once its gate is green.")
    update: list[_UpdateField] = Field(
        min_length=1, description="The files that hold this stage's image tags."
    )
    argocd: ArgoCDTarget | None = Field(
        None, description="The Argo CD application(s) that deploy this stage."
    )
    verify: Verify = Field(default_factory=Verify, description="Verification after a promotion merges.")
    production: bool = Field(
        False,
        description=(
            "Mark the stage's GitHub environment as a production environment (the Deployment's "
            "`production_environment`), as DORA tools and GitHub's Environments page read it."
        ),
    )
    promoters: list[Promoter] = Field(
        default_factory=list,
        description=(
            "Who may promote into this stage: GitHub logins and `@org/team` slugs "
            "(default: anyone with write access). When set, its promotion PRs also need one of them to "
            "approve the PR's current head (a review, or `/approve`) before `ferry/gate` turns green, and a "
            "merge nobody of them approved or made is not deployed."
        ),
    )

    @field_validator("source", mode="before")
    @classmethod
    def _one_source(cls, value: Any) -> Any:
        if isinstance(value, dict) and all(key in value for key in SOURCE_KINDS):
            raise config_error("from_both", FROM_BOTH, at=["stages"], at_key=True)
        return value


def _check_version(value: Any) -> Any:
    if value not in SUPPORTED_VERSIONS or isinstance(value, bool):
        known = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
        got = f'"{value}"' if isinstance(value, str) else repr(value)
        raise config_error("version", BAD_VERSION.format(got=got, known=known))
    return value


_NAMES_SCHEMA: dict[str, Any] = {"propertyNames": {"pattern": NAME_RE.pattern}}


class PipelineConfig(_Model):
    """The pipeline config of one GitOps repository."""

    version: Annotated[Literal[1], BeforeValidator(_check_version)] = Field(
        description="Config format version; always `1`."
    )
    warehouses: dict[Name, Warehouse] = Field(
        min_length=1, description="Warehouses, by name.", json_schema_extra=_NAMES_SCHEMA
    )
    stages: dict[Name, Stage] = Field(
        min_length=1,
        description="Stages, by name, usually in promotion order.",
        json_schema_extra=_NAMES_SCHEMA,
    )

    @model_validator(mode="after")
    def _graph(self, info: ValidationInfo) -> PipelineConfig:
        if info.context and info.context.get(SKIP_GRAPH_CHECK):
            return self
        problems = graph_problems(list(self.warehouses), links_of(self))
        if problems:
            first = problems[0]
            raise config_error("graph", first.message, at=list(first.path))
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``.github/ferry.yml`` for editors, with ``$id`` and ``title``."""
    schema = PipelineConfig.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": SCHEMA_TITLE,
    }
