"""Go's value printing and the Sprig/Helm functions for ``argocd_gotemplate``.

``go_print`` is fmt.Sprint for the values YAML yields (``<no value>`` for a missing one, maps as
``map[k:v]``); ``truthy`` is text/template's truth; ``FUNCTIONS`` are the template functions charts use
most (Sprig's ``default``, ``quote``, ``toYaml``, ``nindent``, ``dict``, ``printf``...), with Sprig's
argument order (the piped value comes last).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ruamel.yaml import YAML

NO_VALUE = "<no value>"  # what Go prints for a missing value; Helm then blanks it (engine.go)
MISSING = object()  # no value at all (not even nil): the start of a pipeline


def truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float | str | list | tuple | dict):
        return bool(value)
    return True


def go_print(value: Any) -> str:
    """Go's fmt.Sprint for the values YAML yields."""
    if value is MISSING or value is None:
        return NO_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)


def _to_yaml(value: Any) -> str:
    if value is None:
        return "null"
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue().rstrip("\n").removesuffix("\n...")


def _indent(width: int, text: str) -> str:
    pad = " " * width
    return "\n".join(pad + line for line in str(text).split("\n"))


def _default(fallback: Any, *given: Any) -> Any:
    return given[0] if given and truthy(given[0]) else fallback


def _dict(*pairs: Any) -> dict[str, Any]:
    return {str(pairs[i]): pairs[i + 1] if i + 1 < len(pairs) else "" for i in range(0, len(pairs), 2)}


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(match: re.Match[str]) -> str:
        verb = match.group(1)
        if verb == "%":
            return "%"
        value = next(values, None)
        return json.dumps(go_print(value)) if verb == "q" else go_print(value)

    return re.sub(r"%[-+# 0-9.]*([svdqfgt%])", one, fmt)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "default": _default,
    "quote": lambda *a: " ".join(json.dumps(go_print(v)) for v in a if v is not None),
    "squote": lambda *a: " ".join(f"'{go_print(v)}'" for v in a if v is not None),
    "toYaml": _to_yaml,
    "toJson": lambda v: json.dumps(v, separators=(",", ":")),
    "indent": _indent,
    "nindent": lambda width, text: "\n" + _indent(width, text),
    "dict": _dict,
    "list": lambda *a: list(a),
    "printf": _printf,
    "print": lambda *a: "".join(go_print(v) for v in a),
    "upper": lambda s: str(s).upper(),
    "lower": lambda s: str(s).lower(),
    "trim": lambda s: str(s).strip(),
    "trunc": lambda n, s: str(s)[:n] if n >= 0 else str(s)[n:],
    "trimSuffix": lambda suffix, s: str(s).removesuffix(suffix),
    "trimPrefix": lambda prefix, s: str(s).removeprefix(prefix),
    "replace": lambda old, new, s: str(s).replace(old, new),
    "contains": lambda sub, s: sub in str(s),
    "hasPrefix": lambda prefix, s: str(s).startswith(prefix),
    "hasSuffix": lambda suffix, s: str(s).endswith(suffix),
    "toString": go_print,
    "int": lambda v: int(v or 0),
    "len": len,
    "index": lambda v, *keys: _index(v, keys),
    "hasKey": lambda m, key: isinstance(m, Mapping) and key in m,
    "empty": lambda v: not truthy(v),
    "not": lambda v: not truthy(v),
    "and": lambda *a: next((v for v in a if not truthy(v)), a[-1]),
    "or": lambda *a: next((v for v in a if truthy(v)), a[-1]),
    "eq": lambda a, *b: any(a == v for v in b),
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "b64enc": lambda s: base64.b64encode(str(s).encode()).decode(),
    "sha256sum": lambda s: hashlib.sha256(str(s).encode()).hexdigest(),
}


def _index(value: Any, keys: tuple[Any, ...]) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else value[key]
    return value
