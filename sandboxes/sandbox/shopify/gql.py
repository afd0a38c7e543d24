"""A small, honest GraphQL *document* parser — syntax only, no schema and no execution engine.

The sandbox answers a fixed set of Shopify operations (``resolver.py``); this module only turns the
request text into a tree of fields with arguments, aliases and fragments, resolves ``$variables`` and
projects hand-built result dicts onto a selection set. ``graphql-core`` is not a dependency of the
project, and a full engine would be the wrong tool: the sandbox must reproduce Shopify's behaviour
(cost, throttling, search syntax), not GraphQL's type system.

Supported: queries and mutations (named or anonymous), variable definitions with defaults, aliases,
arguments of every literal kind, named fragments, inline fragments (type conditions are honoured when
projecting onto nodes that carry ``__typename``), directives are parsed and ignored except
the include and skip directives. Not supported: subscriptions, schema definitions.
"""

# long module: AST types, lexer, recursive-descent parser and selection helpers form one GraphQL front end.

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Document",
    "EnumValue",
    "Field",
    "FragmentSpread",
    "GraphQLSyntaxError",
    "InlineFragment",
    "LazyConnection",
    "LazyValue",
    "Operation",
    "Selection",
    "Variable",
    "collect_fields",
    "parse",
    "resolve_arguments",
    "resolve_value",
]


class GraphQLSyntaxError(ValueError):
    """A parse error, reported like Shopify does: message plus 1-based line/column."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class EnumValue:
    name: str


@dataclass
class Field:
    name: str
    alias: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    selections: list[Selection] = field(default_factory=list)
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)
    line: int = 1
    column: int = 1

    @property
    def key(self) -> str:
        """The key this field gets in the response (its alias if it has one)."""
        return self.alias or self.name


@dataclass
class FragmentSpread:
    name: str
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class InlineFragment:
    type_condition: str | None
    selections: list[Selection]
    directives: dict[str, dict[str, Any]] = field(default_factory=dict)


Selection = Field | FragmentSpread | InlineFragment


@dataclass
class Operation:
    kind: str  # "query" | "mutation" | "subscription"
    name: str | None
    variable_defaults: dict[str, Any]
    selections: list[Selection]


@dataclass
class Fragment:
    name: str
    type_condition: str
    selections: list[Selection]


@dataclass
class Document:
    operations: list[Operation]
    fragments: dict[str, Fragment]

    def operation(self, name: str | None) -> Operation:
        """The operation to run: the named one, or the only one (GraphQL's rule)."""
        if name:
            for op in self.operations:
                if op.name == name:
                    return op
            raise GraphQLSyntaxError(f'No operation named "{name}"', 1, 1)
        if len(self.operations) != 1:
            raise GraphQLSyntaxError("An operation name is required", 1, 1)
        return self.operations[0]


class LazyValue:
    """A field whose value depends on its arguments (``quantities(names: [...])``); evaluated on projection."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[dict[str, Any]], Any]) -> None:
        self.fn = fn


class LazyConnection:
    """A nested connection: ``page(args)`` answers a normal request, ``iterate()`` walks every node (bulk)."""

    __slots__ = ("iterate", "page")

    def __init__(self, page: Callable[[dict[str, Any]], dict[str, Any]],
                 iterate: Callable[[], Iterator[dict[str, Any]]]) -> None:
        self.page = page
        self.iterate = iterate


# --- tokenizer -----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r'(?P<ws>[\s,\ufeff]+|#[^\n\r]*)'
    r'|(?P<block>"""(?:\\"""|[^"]|"(?!""))*""")'
    r'|(?P<string>"(?:\\.|[^"\\\n\r])*")'
    r'|(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
    r'|(?P<name>[_A-Za-z][_0-9A-Za-z]*)'
    r'|(?P<spread>\.\.\.)'
    r'|(?P<punct>[!$&()\:=@\[\]{|}])'
)

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass
class _Tok:
    kind: str
    value: str
    line: int
    column: int


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "u":
                out.append(chr(int(raw[i + 2:i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _block_string(raw: str) -> str:
    # GraphQL block strings: strip common indentation and blank first/last lines.
    lines = raw.replace('\\"""', '"""').splitlines()
    indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines[1:] if ln.strip()]
    common = min(indents) if indents else 0
    body = [lines[0]] + [ln[common:] for ln in lines[1:]] if lines else []
    while body and not body[0].strip():
        body.pop(0)
    while body and not body[-1].strip():
        body.pop()
    return "\n".join(body)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise GraphQLSyntaxError(f'Parse error on "{text[pos]}" at [{line}, {pos - line_start + 1}]',
                                     line, pos - line_start + 1)
        kind = m.lastgroup or ""
        value = m.group()
        if kind != "ws":
            toks.append(_Tok(kind, value, line, pos - line_start + 1))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = pos + value.rfind("\n") + 1
        pos = m.end()
    toks.append(_Tok("eof", "", line, pos - line_start + 1))
    return toks


# --- parser --------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, tok: _Tok | None = None) -> GraphQLSyntaxError:
        tok = tok or self.peek()
        shown = tok.value or "end of file"
        return GraphQLSyntaxError(f'Parse error on "{shown}" at [{tok.line}, {tok.column}]', tok.line, tok.column)

    def expect(self, value: str) -> _Tok:
        tok = self.take()
        if tok.value != value or tok.kind in ("string", "block"):
            raise self.error(tok)
        return tok

    def accept(self, value: str) -> bool:
        tok = self.peek()
        if tok.value == value and tok.kind not in ("string", "block"):
            self.i += 1
            return True
        return False

    def name(self) -> str:
        tok = self.take()
        if tok.kind != "name":
            raise self.error(tok)
        return tok.value

    def document(self) -> Document:
        ops: list[Operation] = []
        frags: dict[str, Fragment] = {}
        while self.peek().kind != "eof":
            tok = self.peek()
            if tok.value == "{":
                ops.append(Operation("query", None, {}, self.selection_set()))
            elif tok.value in ("query", "mutation", "subscription"):
                ops.append(self.operation())
            elif tok.value == "fragment":
                frag = self.fragment()
                frags[frag.name] = frag
            else:
                raise self.error(tok)
        if not ops:
            raise GraphQLSyntaxError("Document must contain at least one operation", 1, 1)
        return Document(ops, frags)

    def operation(self) -> Operation:
        kind = self.take().value
        name = self.name() if self.peek().kind == "name" else None
        defaults: dict[str, Any] = {}
        if self.accept("("):
            while not self.accept(")"):
                self.expect("$")
                var = self.name()
                self.expect(":")
                self.type_ref()
                defaults[var] = self.value(const=True) if self.accept("=") else None
                self.directives()
        self.directives()
        return Operation(kind, name, defaults, self.selection_set())

    def type_ref(self) -> None:
        if self.accept("["):
            self.type_ref()
            self.expect("]")
        else:
            self.name()
        self.accept("!")

    def fragment(self) -> Fragment:
        self.expect("fragment")
        name = self.name()
        if self.name() != "on":
            raise self.error(self.toks[self.i - 1])
        cond = self.name()
        self.directives()
        return Fragment(name, cond, self.selection_set())

    def directives(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        while self.accept("@"):
            name = self.name()
            out[name] = self.arguments()
        return out

    def selection_set(self) -> list[Selection]:
        self.expect("{")
        sels: list[Selection] = []
        while not self.accept("}"):
            if self.peek().kind == "eof":
                raise self.error()
            sels.append(self.selection())
        if not sels:
            raise self.error(self.toks[self.i - 1])
        return sels

    def selection(self) -> Selection:
        if self.peek().kind == "spread":
            self.take()
            if self.peek().kind == "name" and self.peek().value != "on":
                name = self.name()
                return FragmentSpread(name, self.directives())
            cond = None
            if self.peek().value == "on":
                self.take()
                cond = self.name()
            dirs = self.directives()
            return InlineFragment(cond, self.selection_set(), dirs)
        tok = self.peek()
        name = self.name()
        alias = None
        if self.accept(":"):
            alias, name = name, self.name()
        args = self.arguments()
        dirs = self.directives()
        sels = self.selection_set() if self.peek().value == "{" else []
        return Field(name, alias, args, sels, dirs, tok.line, tok.column)

    def arguments(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.accept("("):
            while not self.accept(")"):
                key = self.name()
                self.expect(":")
                args[key] = self.value(const=False)
        return args

    def value(self, *, const: bool) -> Any:
        tok = self.take()
        if tok.kind == "punct" and tok.value == "$" and not const:
            return Variable(self.name())
        if tok.kind == "string":
            return _unescape(tok.value[1:-1])
        if tok.kind == "block":
            return _block_string(tok.value[3:-3])
        if tok.kind == "number":
            return float(tok.value) if any(c in tok.value for c in ".eE") else int(tok.value)
        if tok.kind == "name":
            if tok.value in ("true", "false"):
                return tok.value == "true"
            if tok.value == "null":
                return None
            return EnumValue(tok.value)
        if tok.value == "[":
            items = []
            while not self.accept("]"):
                items.append(self.value(const=const))
            return items
        if tok.value == "{":
            obj: dict[str, Any] = {}
            while not self.accept("}"):
                key = self.name()
                self.expect(":")
                obj[key] = self.value(const=const)
            return obj
        raise self.error(tok)


def parse(text: str) -> Document:
    """Parse a GraphQL request document; raises GraphQLSyntaxError with Shopify-like messages."""
    return _Parser(text).document()


# --- evaluation helpers --------------------------------------------------------------------------------

def resolve_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace variables by their values; enums become their names (plain strings)."""
    if isinstance(value, Variable):
        return variables.get(value.name)
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [resolve_value(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: resolve_value(v, variables) for k, v in value.items()}
    return value


def resolve_arguments(fld: Field, variables: Mapping[str, Any]) -> dict[str, Any]:
    return {k: resolve_value(v, variables) for k, v in fld.arguments.items()}


def _included(dirs: dict[str, dict[str, Any]], variables: Mapping[str, Any]) -> bool:
    if "skip" in dirs and resolve_value(dirs["skip"].get("if"), variables) is True:
        return False
    return not ("include" in dirs and resolve_value(dirs["include"].get("if"), variables) is False)


def collect_fields(selections: list[Selection], doc: Document, variables: Mapping[str, Any],
                   typename: str | None = None) -> list[Field]:
    """Flatten fragments into the list of fields that apply to an object of type ``typename``.

    ``typename=None`` accepts every type condition (used for cost estimates and bulk validation)."""
    out: list[Field] = []
    for sel in selections:
        if not _included(sel.directives, variables):
            continue
        if isinstance(sel, Field):
            out.append(sel)
        elif isinstance(sel, FragmentSpread):
            frag = doc.fragments.get(sel.name)
            if frag is None:
                raise GraphQLSyntaxError(f"Fragment {sel.name} was used, but not defined", 1, 1)
            if typename is None or _type_matches(frag.type_condition, typename):
                out.extend(collect_fields(frag.selections, doc, variables, typename))
        elif typename is None or sel.type_condition is None or _type_matches(sel.type_condition, typename):
            out.extend(collect_fields(sel.selections, doc, variables, typename))
    return out


# Interfaces the sandbox's node types implement, so ``... on Node`` style fragments match.
_INTERFACES = {"Node", "HasMetafields", "Publishable", "LegacyInteroperability", "CommentEventSubject",
               "HasEvents", "OnlineStorePreviewable", "Navigable"}


def _type_matches(condition: str, typename: str) -> bool:
    return condition == typename or condition in _INTERFACES
