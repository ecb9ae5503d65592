"""The part of Go's text/template (with Helm's functions) that the Argo CD stand-in needs to render charts.

Argo CD renders a Helm source with ``helm template`` (reposerver/repository/repository.go,
``helmTemplate``), which executes the chart's templates with Go's ``text/template`` plus the Sprig
and Helm functions (helm/pkg/engine/funcs.go). This module implements that language honestly for the
constructs charts like the example's use: actions with ``{{-``/``-}}`` trimming and comments, pipelines,
variables (``$``, ``$x := …``), fields (``.Values.a.b``, ``$x.a``), ``if``/``else if``/``else``,
``with``, ``range`` (lists and maps, maps in key order as Go does), ``define``/``template``/``include``,
and the functions in ``FUNCTIONS``. Anything else is a parse or execution error worded as Go words it
(``function "x" not defined``), so a chart the stand-in cannot render fails the comparison loudly
instead of rendering something else.

Pure: no I/O. ``render(name, text, data, defines)`` returns the text; errors are ``TemplateError``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import FerryError
from bot.sandbox.argocd_gofuncs import FUNCTIONS, MISSING, NO_VALUE, go_print, truthy


class TemplateError(FerryError):
    """A template that does not parse or execute; the text reads as Helm's error would."""


# --- lexing -------------------------------------------------------------------------------------


@dataclass
class _Action:
    text: str
    line: int


_TOKEN_RE = re.compile(
    r"""\s+|"(?:\\.|[^"\\])*"|`[^`]*`|'(?:\\.|[^'\\])'|:=|=|\||\(|\)|,"""
    r"""|\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*|(?:\.[A-Za-z0-9_]+)+|\."""
    r"""|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*"""
)


def _split(name: str, text: str) -> list[str | _Action]:
    """Text and actions in order, with Go's trim markers applied and comments dropped."""
    parts: list[str | _Action] = []
    pos = 0
    trim_next = False
    while True:
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        if trim_next:
            chunk = chunk.lstrip()
        if start < 0:
            parts.append(chunk)
            return parts
        inner = start + 2
        if text.startswith("- ", inner) or text.startswith("-\n", inner) or text.startswith("-\t", inner):
            chunk = chunk.rstrip()
            inner += 1
        parts.append(chunk)
        end = _action_end(name, text, inner)
        body = text[inner:end]
        trim_next = body.endswith((" -", "\n-", "\t-"))
        if trim_next:
            body = body[:-1]
        line = text.count("\n", 0, start) + 1
        stripped = body.strip()
        if not (stripped.startswith("/*") and stripped.endswith("*/")):
            parts.append(_Action(stripped, line))
        pos = end + 2


def _action_end(name: str, text: str, pos: int) -> int:
    quote = ""
    while pos < len(text) - 1:
        char = text[pos]
        if quote:
            if char == "\\" and quote == '"':
                pos += 1
            elif char == quote:
                quote = ""
        elif char in '"`':
            quote = char
        elif text.startswith("}}", pos):
            return pos
        pos += 1
    raise TemplateError(f"template: {name}: unclosed action")


def _tokens(name: str, action: _Action) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(action.text):
        match = _TOKEN_RE.match(action.text, pos)
        if match is None:
            bad = action.text[pos]
            raise TemplateError(f"template: {name}:{action.line}: unexpected {bad!r} in command")
        if not match.group().isspace():
            tokens.append(match.group())
        pos = match.end()
    return tokens


# --- parsing ------------------------------------------------------------------------------------


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool  # "=" re-assigns; ":=" declares
    commands: list[list[Any]]  # each operand: ("field", base, path) | ("lit", v) | ("fn", name) | _Pipe


@dataclass
class _Node:
    kind: str  # text | out | if | with | range | template
    text: str = ""
    pipe: _Pipe | None = None
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)
    line: int = 0


class _Parser:
    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.items = _split(name, text)
        self.pos = 0
        self.defines: dict[str, list[_Node]] = {}

    def error(self, line: int, message: str) -> TemplateError:
        return TemplateError(f"parse error at ({self.name}:{line}): {message}")

    def parse(self, stop: tuple[str, ...] = ()) -> tuple[list[_Node], str, _Action | None]:
        nodes: list[_Node] = []
        while self.pos < len(self.items):
            item = self.items[self.pos]
            self.pos += 1
            if isinstance(item, str):
                if item:
                    nodes.append(_Node("text", text=item))
                continue
            tokens = _tokens(self.name, item)
            word = tokens[0] if tokens else ""
            if word in ("end", "else"):
                if word not in stop:
                    raise self.error(item.line, f"unexpected {{{{{word}}}}}")
                return nodes, word, item
            if word in ("if", "with", "range"):
                nodes.append(self._control(word, tokens[1:], item))
            elif word == "define":
                name = _literal(tokens[1]) if len(tokens) == 2 else None
                if not isinstance(name, str):
                    raise self.error(item.line, "define needs a quoted template name")
                body, _, _ = self.parse(("end",))
                self.defines[name] = body
            elif word == "template":
                if len(tokens) < 2 or not isinstance(_literal(tokens[1]), str):
                    raise self.error(item.line, "template needs a quoted template name")
                pipe = self._pipe(tokens[2:], item) if len(tokens) > 2 else None
                nodes.append(_Node("template", text=str(_literal(tokens[1])), pipe=pipe, line=item.line))
            elif word in ("block", "break", "continue"):
                raise self.error(item.line, f"{{{{{word}}}}} is not rendered by the Argo CD stand-in")
            else:
                nodes.append(_Node("out", pipe=self._pipe(tokens, item), line=item.line))
        if stop:
            raise TemplateError(f"template: {self.name}: unexpected EOF")
        return nodes, "", None

    def _control(self, word: str, tokens: list[str], action: _Action) -> _Node:
        node = _Node(word, pipe=self._pipe(tokens, action), line=action.line)
        node.body, ended, at = self.parse(("end", "else"))
        if ended == "else" and at is not None:
            rest = _tokens(self.name, at)[1:]
            if rest and rest[0] in ("if", "with"):  # "else if …" is an if nested in the else branch
                node.orelse = [self._control(rest[0], rest[1:], at)]
            else:
                node.orelse, _, _ = self.parse(("end",))
        return node

    def _pipe(self, tokens: list[str], action: _Action) -> _Pipe:
        decl: list[str] = []
        assign = False
        if ":=" in tokens or ("=" in tokens and tokens[0].startswith("$")):
            op = ":=" if ":=" in tokens else "="
            at = tokens.index(op)
            decl = [t for t in tokens[:at] if t != ","]
            assign = op == "="
            tokens = tokens[at + 1 :]
        if not tokens:
            raise self.error(action.line, "missing value for command")
        commands: list[list[Any]] = [[]]
        stack: list[list[list[Any]]] = []
        for token in tokens:
            if token == "|":
                commands.append([])
            elif token == "(":
                stack.append(commands)
                commands = [[]]
            elif token == ")":
                if not stack:
                    raise self.error(action.line, "unexpected right paren")
                inner = _Pipe([], False, commands)
                commands = stack.pop()
                commands[-1].append(inner)
            elif token.startswith(".") and commands[-1] and isinstance(commands[-1][-1], _Pipe):
                inner = commands[-1].pop()
                commands[-1].append(("chain", inner, token.split(".")[1:]))
            else:
                commands[-1].append(self._operand(token, action))
        if stack or any(not command for command in commands):
            raise self.error(action.line, "unclosed left paren or empty command")
        return _Pipe(decl, assign, commands)

    def _operand(self, token: str, action: _Action) -> Any:
        if token == ".":
            return ("field", ".", [])
        if token.startswith("."):
            return ("field", ".", token.split(".")[1:])
        if token.startswith("$"):
            base, *path = token.split(".")
            return ("field", base, path)
        literal = _literal(token)
        if literal is not _NOT_LITERAL:
            return ("lit", literal)
        if token in FUNCTIONS or token in ("include", "tpl", "required", "fail"):
            return ("fn", token)
        raise self.error(action.line, f'function "{token}" not defined')


_NOT_LITERAL = MISSING


def _literal(token: str) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if token.startswith("`"):
        return token[1:-1]
    if token in ("true", "false"):
        return token == "true"
    if token == "nil":
        return None
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if re.fullmatch(r"-?\d+\.\d+", token):
        return float(token)
    return _NOT_LITERAL


# --- execution ----------------------------------------------------------------------------------


@dataclass
class _State:
    name: str
    defines: Mapping[str, list[_Node]]
    variables: list[dict[str, Any]]
    depth: int = 0


def parse_defines(name: str, text: str) -> dict[str, list[_Node]]:
    """The named templates (``define``) a file declares, for ``include`` from other files."""
    parser = _Parser(name, text)
    parser.parse()
    return parser.defines


def render(name: str, text: str, data: Any, defines: Mapping[str, Any] | None = None) -> str:
    """Execute template ``text`` (file ``name``) with ``data`` as dot; ``defines`` from other files."""
    parser = _Parser(name, text)
    nodes, _, _ = parser.parse()
    named = {**(defines or {}), **parser.defines}
    state = _State(name, named, [{"$": data}])
    return _run(nodes, data, state).replace(NO_VALUE, "")


def _run(nodes: list[_Node], dot: Any, state: _State) -> str:
    out = io.StringIO()
    for node in nodes:
        if node.kind == "text":
            out.write(node.text)
        elif node.kind == "out":
            assert node.pipe is not None
            value = _pipe(node.pipe, dot, state, node.line)
            if not node.pipe.decl:
                out.write(go_print(value))
        elif node.kind == "template":
            value = _pipe(node.pipe, dot, state, node.line) if node.pipe else None
            out.write(_include(node.text, value, state, node.line))
        else:
            out.write(_control(node, dot, state))
    return out.getvalue()


def _control(node: _Node, dot: Any, state: _State) -> str:
    assert node.pipe is not None
    state.variables.append({})
    try:
        if node.kind == "range":  # the loop variables are bound per element, not to the whole value
            value = _pipe(_Pipe([], False, node.pipe.commands), dot, state, node.line)
            return _range(node, value, dot, state)
        value = _pipe(node.pipe, dot, state, node.line)
        if not truthy(value):
            return _run(node.orelse, dot, state)
        return _run(node.body, value if node.kind == "with" else dot, state)
    finally:
        state.variables.pop()


def _range(node: _Node, value: Any, dot: Any, state: _State) -> str:
    assert node.pipe is not None
    if isinstance(value, Mapping):
        items = [(key, value[key]) for key in sorted(value)]
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [(i, i) for i in range(value)]
    elif value is None:
        items = []
    else:
        raise TemplateError(f"template: {state.name}:{node.line}: range can't iterate over {go_print(value)}")
    if not items:
        return _run(node.orelse, dot, state)
    out = []
    names = node.pipe.decl
    for key, item in items:
        scope = state.variables[-1]
        if len(names) == 1:
            scope[names[0]] = item
        elif len(names) == 2:
            scope[names[0]], scope[names[1]] = key, item
        out.append(_run(node.body, item, state))
    return "".join(out)


def _pipe(pipe: _Pipe, dot: Any, state: _State, line: int) -> Any:
    value: Any = _NOT_LITERAL
    for command in pipe.commands:
        value = _command(command, dot, state, line, value)
    for name in pipe.decl[-1:]:
        if pipe.assign:
            scope = next((s for s in reversed(state.variables) if name in s), state.variables[-1])
            scope[name] = value
        else:
            state.variables[-1][name] = value
    return value


def _command(command: list[Any], dot: Any, state: _State, line: int, piped: Any) -> Any:
    head, *rest = command
    if isinstance(head, tuple) and head[0] == "fn":
        args = [_operand(arg, dot, state, line) for arg in rest]
        if piped is not _NOT_LITERAL:
            args.append(piped)
        return _call(head[1], args, state, line)
    if rest or piped is not _NOT_LITERAL:
        raise TemplateError(f"template: {state.name}:{line}: can't give argument to non-function")
    return _operand(head, dot, state, line)


def _operand(operand: Any, dot: Any, state: _State, line: int) -> Any:
    if isinstance(operand, _Pipe):
        return _pipe(operand, dot, state, line)
    kind = operand[0]
    if kind == "lit":
        return operand[1]
    if kind == "fn":
        return _call(operand[1], [], state, line)
    if kind == "chain":
        return _walk(_operand(operand[1], dot, state, line), operand[2], state, line)
    _, base, path = operand
    if base == ".":
        start = dot
    else:
        scope = next((s for s in reversed(state.variables) if base in s), None)
        if scope is None:
            raise TemplateError(f'template: {state.name}:{line}: undefined variable "{base}"')
        start = scope[base]
    return _walk(start, path, state, line)


def _walk(value: Any, path: list[str], state: _State, line: int) -> Any:
    for step in path:
        if isinstance(value, Mapping):
            value = value.get(step)
        elif value is None:
            raise TemplateError(
                f"template: {state.name}:{line}: nil pointer evaluating interface {{}}.{step}"
            )
        else:
            kind = type(value).__name__
            raise TemplateError(f"template: {state.name}:{line}: can't evaluate field {step} in type {kind}")
    return value


def _call(name: str, args: list[Any], state: _State, line: int) -> Any:
    if name == "include":
        if len(args) != 2:
            raise TemplateError(f"template: {state.name}:{line}: wrong number of args for include")
        return _include(str(args[0]), args[1], state, line)
    if name == "required":
        if len(args) != 2:
            raise TemplateError(f"template: {state.name}:{line}: wrong number of args for required")
        if args[1] is None or args[1] == "":
            raise TemplateError(f"execution error at ({state.name}:{line}): {args[0]}")
        return args[1]
    if name == "fail":
        raise TemplateError(f"execution error at ({state.name}:{line}): {args[0] if args else ''}")
    if name == "tpl":
        return render(state.name, str(args[0]), args[1], state.defines)
    try:
        return FUNCTIONS[name](*args)
    except TypeError as exc:
        raise TemplateError(f"template: {state.name}:{line}: error calling {name}: {exc}") from None


def _include(name: str, data: Any, state: _State, line: int) -> str:
    body = state.defines.get(name)
    if body is None:
        raise TemplateError(f'template: {state.name}:{line}: no template "{name}" associated with template')
    if state.depth > 100:
        raise TemplateError(f"template: {state.name}:{line}: rendering template has a nested reference")
    inner = _State(state.name, state.defines, [{"$": data}], state.depth + 1)
    return _run(body, data, inner)
