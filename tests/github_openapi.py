"""GitHub's published REST and webhook description (npm ``@octokit/openapi``, OpenAPI 3.0.3), and what it says
of a body: the problems a webhook payload or a REST response has against it, as readable strings.

The description is about 13 MB, so it is not in the repository: ``.ci/run`` installs the pinned package into
a cache outside the clone and points ``FERRY_GITHUB_OPENAPI`` at ``generated/api.github.com.json`` in it.
Webhooks are the description's ``x-webhooks`` (one per event and action, e.g. ``pull-request-opened``);
REST responses are ``paths[template][method].responses[status]``. Schemas are validated as OpenAPI 3.0
schemas with ``openapi-schema-validator`` (``date-time`` formats checked), read as GitHub's own tooling
reads them (octokit's generated types): ``nullable: true`` admits null whatever else the schema says (an
``enum``, an ``allOf``/``anyOf`` of one reference), where OAS 3.0.3 would tie it to a sibling ``type``;
and ``discriminator`` is the hint OAS 3.1 makes it, not a requirement that the body be an object (the
contents API's ``oneOf`` of a directory listing, an array, and a file carries one).

``unknown_keys`` adds what JSON Schema leaves open: keys a body has that the description does not name
(GitHub's schemas never say ``additionalProperties: false``). A stand-in that invents a key lets Ferry
come to rely on something GitHub never sends. ``UNDESCRIBED`` lists the few keys GitHub sends that some
copies of an object in this description leave out, each with the evidence.

``DESCRIPTION_DEFECTS`` are the places where the description contradicts itself; each says how, and the
schema is read as its own canonical component says. Everything else the description says is followed,
including fields it marks required that GitHub's older example payloads omit.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from jsonschema.validators import extend
from openapi_schema_validator import OAS30ReadValidator, OAS30Validator, oas30_format_checker

ENV = "FERRY_GITHUB_OPENAPI"
PACKAGE = "@octokit/openapi"
RELATIVE = "node_modules/@octokit/openapi/generated/api.github.com.json"

Json = dict[str, Any]

# Keys GitHub sends that some copies of an object in its description leave out, and why we know it does.
UNDESCRIBED = {
    # every user object: ``simple-user`` has it, older inline copies of a user do not
    "user_view_type": "anywhere",
    # error bodies: ``basic-error`` documents it, ``validation-error`` and inline error objects do not
    "status": "(top)",
    # labels: label archiving came after this description; GitHub's later one (githubkit's generated
    # 2022-11-28 models, from github/rest-api-description) requires both on every label
    "archived_at": "anywhere",
    "archived_by": "anywhere",
}


def _nullable_first(keyword: Any) -> Any:
    def check(validator: Any, value: Any, instance: Any, schema: Json) -> Any:
        if instance is None and schema.get("nullable") is True:
            return iter(())
        return keyword(validator, value, instance, schema)

    return check


def _as_github_reads_it(base: Any) -> Any:
    """``base`` with nullable taken first on every keyword and composition free of ``discriminator``."""
    plain = {name: Draft4Validator.VALIDATORS[name] for name in ("allOf", "anyOf", "oneOf")}
    keywords = {name: _nullable_first(plain.get(name, check)) for name, check in base.VALIDATORS.items()}
    keywords["discriminator"] = lambda *_: iter(())
    return extend(base, validators=keywords)


WEBHOOK_VALIDATOR = _as_github_reads_it(OAS30Validator)
RESPONSE_VALIDATOR = _as_github_reads_it(OAS30ReadValidator)


def description_path() -> Path | None:
    """The file ``FERRY_GITHUB_OPENAPI`` names (the JSON, or the npm prefix holding it), if it exists."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    if path.is_dir():
        path = path / RELATIVE
    return path if path.is_file() else None


def webhook_key(event: str, action: str | None) -> str:
    """``pull_request`` + ``opened`` -> ``pull-request-opened``, the description's ``x-webhooks`` key."""
    key = event.replace("_", "-")
    return f"{key}-{action.replace('_', '-')}" if action else key


class GitHubDescription:
    """One loaded description; validators are built per schema and cached."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec: Json = json.loads(path.read_text())
        self._components = self.spec["components"]
        self._validators: dict[tuple[str, bool], Any] = {}
        for fix in DESCRIPTION_DEFECTS:
            fix(self.spec)

    # --- where a schema is -------------------------------------------------------------------------
    def webhook_schema(self, event: str, action: str | None) -> Json:
        key = webhook_key(event, action)
        try:
            body = self.spec["x-webhooks"][key]["post"]["requestBody"]
        except KeyError:
            raise KeyError(f"GitHub's description has no webhook {key!r} ({event} {action})") from None
        schema: Json = body["content"]["application/json"]["schema"]
        return schema

    def response_schema(self, method: str, template: str, status: int) -> Json | None:
        """The JSON schema of one documented response; None for a documented response without a body.

        Raises KeyError when the operation or that status is not documented at all.
        """
        try:
            operation = self.spec["paths"][template][method.lower()]
        except KeyError:
            raise KeyError(f"GitHub's description has no operation {method} {template}") from None
        response = operation["responses"].get(str(status))
        if response is None:
            documented = ", ".join(operation["responses"])
            raise KeyError(f"{method} {template} documents no {status} response (only {documented})")
        if "$ref" in response:
            response = self._resolve(response["$ref"])
        content = response.get("content", {})
        media = content.get("application/json")
        if media is None:
            return None
        schema: Json = media["schema"]
        return schema

    def _resolve(self, ref: str) -> Json:
        node: Any = self.spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return dict(node)

    # --- what a body lacks or gets wrong -----------------------------------------------------------
    def _validator(self, schema: Json, *, response: bool) -> Any:
        cache_key = (json.dumps(schema, sort_keys=True), response)
        if cache_key not in self._validators:
            kind = RESPONSE_VALIDATOR if response else WEBHOOK_VALIDATOR
            rooted = {**schema, "components": self._components}
            self._validators[cache_key] = kind(rooted, format_checker=oas30_format_checker)
        return self._validators[cache_key]

    def problems(self, schema: Json, value: Any, *, response: bool = False) -> list[str]:
        """Every violation of ``schema`` and every key the description does not name, with its path."""
        validator = self._validator(schema, response=response)
        found = [
            f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {_short(error.message)}"
            for error in validator.iter_errors(value)
        ]
        found += [f"{where}: {key!r} is not in GitHub's description" for where, key in self.unknown_keys(
            schema, value, response=response
        )]  # fmt: skip
        return sorted(found)

    def webhook_problems(self, event: str, action: str | None, payload: Json) -> list[str]:
        return self.problems(self.webhook_schema(event, action), payload)

    def response_problems(self, method: str, template: str, status: int, body: Any) -> list[str]:
        schema = self.response_schema(method, template, status)
        if schema is None:
            return []  # documented without a body (GitHub still answers JSON errors: nothing to hold)
        return self.problems(schema, body, response=True)

    # --- keys the description does not name --------------------------------------------------------
    def unknown_keys(
        self, schema: Json, value: Any, *, response: bool = False, where: str = "(top)"
    ) -> Iterator[tuple[str, str]]:
        schema = self._deref(schema)
        for combinator in ("oneOf", "anyOf"):
            if combinator in schema:
                branch = self._matching_branch(schema[combinator], value, response=response)
                if branch is not None:
                    yield from self.unknown_keys(branch, value, response=response, where=where)
                return
        if isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, dict):
                for index, item in enumerate(value):
                    yield from self.unknown_keys(items, item, response=response, where=f"{where}/{index}")
            return
        if not isinstance(value, dict):
            return
        properties, extra, open_ended = self._object_shape(schema)
        for key, item in value.items():
            if key in properties:
                yield from self.unknown_keys(properties[key], item, response=response, where=f"{where}/{key}")
            elif isinstance(extra, dict):
                yield from self.unknown_keys(extra, item, response=response, where=f"{where}/{key}")
            elif not open_ended and UNDESCRIBED.get(key) not in ("anywhere", where):
                yield (where, key)

    def _object_shape(self, schema: Json) -> tuple[dict[str, Json], Any, bool]:
        """(named properties, additionalProperties, open-ended) of an object schema, allOf merged."""
        properties: dict[str, Json] = {}
        extra: Any = schema.get("additionalProperties")
        parts = [schema, *(self._deref(part) for part in schema.get("allOf", []))]
        for part in parts:
            properties |= part.get("properties", {})
            if isinstance(part.get("additionalProperties"), dict):
                extra = part["additionalProperties"]
        # An object schema that names no property at all (``type: object`` alone, or
        # ``additionalProperties: true``) says nothing about its keys.
        open_ended = extra is True or not properties
        return properties, extra, open_ended

    def _matching_branch(self, branches: list[Json], value: Any, *, response: bool) -> Json | None:
        for branch in branches:
            if not list(self._validator(branch, response=response).iter_errors(value)):
                return branch
        return None

    def _deref(self, schema: Json) -> Json:
        while "$ref" in schema:
            schema = self._resolve(schema["$ref"])
        return schema


# --- where the description contradicts itself -------------------------------------------------------
def _installations_list_is_the_installation_component(spec: Json) -> None:
    """``GET /app/installations`` inlines an old copy of ``installation`` whose ``account`` is the ``allOf``
    of a user and an enterprise (both at once: no account is), and which lacks ``client_id``;
    ``GET /app/installations/{installation_id}`` answers the ``installation`` component (``anyOf``)."""
    media = spec["paths"]["/app/installations"]["get"]["responses"]["200"]["content"]["application/json"]
    media["schema"] = {"type": "array", "items": {"$ref": "#/components/schemas/installation"}}


def _a_label_in_a_pull_request_list_may_have_no_description(spec: Json) -> None:
    """``pull-request-simple`` (``GET /pulls``) says a label's ``description`` is a string; the ``label``
    component and ``pull-request`` (``GET /pulls/{n}``) say nullable, and a label GitHub creates when one
    is added to an issue by name has none."""
    labels = spec["components"]["schemas"]["pull-request-simple"]["properties"]["labels"]
    labels["items"]["properties"]["description"]["nullable"] = True


def _an_app_on_a_deployment_may_subscribe_to_any_event(spec: Json) -> None:
    """The ``deployment`` and ``deployment_status`` webhooks inline an old copy of the App
    (``performed_via_github_app``) whose ``events`` are an enum without ``package``, though GitHub Apps
    subscribe to ``package`` (docs.github.com, webhook events and payloads: "To subscribe to this event, a
    GitHub App must have at least read-level access for the Packages repository permission") and this
    description's own lists say so: the hook events of ``webhook-meta-deleted`` include ``package``, and
    the canonical ``nullable-integration`` that ``GET /deployments`` answers for the same App takes any
    event name. GitHub's later description dropped the enum there (githubkit-schemas 26.10.21, generated
    from it: ``WebhookDeploymentCreatedPropDeploymentPropPerformedViaGithubApp.events: list[str]``).
    Read as the canonical component: any string."""
    schemas = spec["components"]["schemas"]
    for webhook, keys in (
        ("webhook-deployment-created", ("deployment",)),
        ("webhook-deployment-status-created", ("deployment", "deployment_status")),
    ):
        for key in keys:
            app = schemas[webhook]["properties"][key]["properties"]["performed_via_github_app"]
            app["properties"]["events"]["items"] = {"type": "string"}


DESCRIPTION_DEFECTS = (
    _installations_list_is_the_installation_component,
    _a_label_in_a_pull_request_list_may_have_no_description,
    _an_app_on_a_deployment_may_subscribe_to_any_event,
)


def _short(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "…"
