"""Whatever YAML a person writes, loading it gives a config or located problems, never a crash."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bot.core.config_load import load_config
from bot.errors import ConfigError

KEYS = st.sampled_from(
    [
        "version", "warehouses", "stages", "web", "dev", "prod", "images", "image", "semver", "lexical",
        "from", "warehouse", "update", "kustomize", "helm", "yaml", "path", "argocd", "app", "apps",
        "verify", "timeout", "soak", "interval", "allow", "ignore", "promoters", "auto_merge", "x",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(
        ["web", "dev", "ghcr.io/acme/web", "^1", "5m", "0s", "[a-", "../x", "/abs", "overlays/dev"]
    ),
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(KEYS, children, max_size=4)),
    max_leaves=25,
)


def _dump(data: Any) -> str:
    stream = io.StringIO()
    YAML().dump(data, stream)
    return stream.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, DOCUMENTS, max_size=4))
def test_any_document_yields_a_config_or_located_problems(data: dict[str, Any]) -> None:
    text = _dump(data)
    try:
        load_config(text)
    except ConfigError as exc:
        assert exc.problems
        lines = len(text.splitlines()) or 1
        for problem in exc.problems:
            assert 1 <= problem.line <= lines + 1, problem
            assert problem.column >= 1, problem
            assert problem.message
