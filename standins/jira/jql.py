"""The JQL subset the service's pollers use, parsed and evaluated the way Jira does.

Grammar: `clause (AND|OR clause)* [ORDER BY field [ASC|DESC], ...]`, with `NOT` and parentheses; a
clause is `field op value`, `field [NOT] IN (v, ...)`, `field IS [NOT] EMPTY|NULL` or `field ~ "text"`.
Values are quoted ("..." or '...') or bare words; dates are `yyyy-MM-dd[ HH:mm]` (also with `/`) or
relative (`-15m`, `-2h`, `-1d`, `-1w`), read as UTC. Anything else raises `JqlError`, which the server
answers with Jira's 400 shape.

Faithful to Jira where it bites: `!=`, `NOT IN` and `NOT field = x` never match an empty field
(`labels != x` skips unlabelled issues; write `labels is EMPTY OR labels != x`), and a value that
names no project or status is an error, not an empty result.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_JQL_LENGTH = 10_000


class JqlError(ValueError):
    """A query outside the supported subset or naming unknown values; the message is Jira-like."""


@dataclass(frozen=True)
class Clause:
    field: str
    op: str  # one of = != in notin is isnot > >= < <= ~ !~
    values: tuple[str, ...]  # empty for is/isnot


@dataclass(frozen=True)
class Bool:
    op: str  # and | or
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Clause | Bool | Not


@dataclass(frozen=True)
class Query:
    where: Node | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)


@dataclass(frozen=True)
class IssueView:
    """What a query can see of an issue; the store builds one per issue."""

    key: str
    project_key: str
    project_name: str
    status: str
    status_category: str
    issuetype: str
    labels: tuple[str, ...]
    summary: str
    created: datetime
    updated: datetime


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~|\(|\)|,)
      | (?P<word>[^\s"'=!<>~(),]+)
    )""",
    re.VERBOSE,
)
_TRAILING_SPACE = re.compile(r"\s*\Z")
_KEYWORDS = {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
_FIELD_ALIASES = {"issuekey": "key", "type": "issuetype", "createddate": "created", "updateddate": "updated"}
_FIELD_OPS = {
    "project": {"=", "!=", "in", "notin"},
    "status": {"=", "!=", "in", "notin"},
    "statuscategory": {"=", "!=", "in", "notin"},
    "issuetype": {"=", "!=", "in", "notin"},
    "key": {"=", "!=", "in", "notin"},
    "labels": {"=", "!=", "in", "notin", "is", "isnot"},
    "summary": {"~", "!~"},
    "text": {"~", "!~"},
    "created": {"=", "!=", ">", ">=", "<", "<="},
    "updated": {"=", "!=", ">", ">=", "<", "<="},
}
_ORDERABLE = {"created", "updated", "key", "status", "project", "summary", "issuetype"}
_NEGATED = {"=": "!=", "!=": "=", "in": "notin", "notin": "in", "is": "isnot", "isnot": "is"}
_NEGATED |= {">": "<=", "<=": ">", "<": ">=", ">=": "<", "~": "!~", "!~": "~"}
_RELATIVE = re.compile(r"([+-]?)(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # string | op | word
    text: str

    def is_kw(self, word: str) -> bool:
        return self.kind == "word" and self.text.lower() == word


def _tokenize(jql: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(jql):
        if _TRAILING_SPACE.match(jql, pos):
            break
        match = _TOKEN.match(jql, pos)
        if match is None:
            raise JqlError(f"Error in the JQL Query: unexpected character '{jql[pos:].strip()[0]}'.")
        pos = match.end()
        kind = match.lastgroup or "word"
        text = match.group(kind)
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        tokens.append(_Tok(kind, text))
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Tok]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise JqlError("Error in the JQL Query: the query ended unexpectedly.")
        self.pos += 1
        return tok

    def expect_op(self, op: str) -> None:
        tok = self.take()
        if tok.kind != "op" or tok.text != op:
            raise JqlError(f"Error in the JQL Query: expecting '{op}' but got '{tok.text}'.")

    def query(self) -> Query:
        where = None
        tok = self.peek()
        if tok is not None and not tok.is_kw("order"):
            where = self.or_expr()
        order_by: tuple[tuple[str, bool], ...] = ()
        tok = self.peek()
        if tok is not None:
            if not tok.is_kw("order"):
                raise JqlError(f"Error in the JQL Query: expecting AND, OR or ORDER BY but got '{tok.text}'.")
            self.take()
            if not self.take().is_kw("by"):
                raise JqlError("Error in the JQL Query: expecting 'by' after 'order'.")
            order_by = self.order_fields()
        return Query(where, order_by)

    def order_fields(self) -> tuple[tuple[str, bool], ...]:
        fields = []
        while True:
            name = _field_name(self.take())
            if name not in _ORDERABLE:
                raise JqlError(f"Field '{name}' does not support sorting in this Jira stand-in.")
            descending = False
            tok = self.peek()
            if tok is not None and (tok.is_kw("asc") or tok.is_kw("desc")):
                descending = self.take().is_kw("desc")
            fields.append((name, descending))
            tok = self.peek()
            if tok is None:
                return tuple(fields)
            self.expect_op(",")

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.is_kw("or"):
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Bool("or", tuple(children))

    def and_expr(self) -> Node:
        children = [self.not_expr()]
        while (tok := self.peek()) is not None and tok.is_kw("and"):
            self.take()
            children.append(self.not_expr())
        return children[0] if len(children) == 1 else Bool("and", tuple(children))

    def not_expr(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.is_kw("not"):
            self.take()
            return Not(self.not_expr())
        if tok is not None and tok.kind == "op" and tok.text == "(":
            self.take()
            node = self.or_expr()
            self.expect_op(")")
            return node
        return self.clause()

    def clause(self) -> Clause:
        field = _field_name(self.take())
        if field not in _FIELD_OPS:
            raise JqlError(f"Field '{field}' does not exist or you do not have permission to view it.")
        op_tok = self.take()
        if op_tok.is_kw("not"):
            if not self.take().is_kw("in"):
                raise JqlError("Error in the JQL Query: expecting 'in' after 'not'.")
            op = "notin"
        elif op_tok.is_kw("in"):
            op = "in"
        elif op_tok.is_kw("is"):
            op = "is"
            if (tok := self.peek()) is not None and tok.is_kw("not"):
                self.take()
                op = "isnot"
        elif op_tok.kind == "op" and op_tok.text not in "(),":
            op = op_tok.text
        else:
            raise JqlError(f"Error in the JQL Query: expecting an operator after '{field}'.")
        if op not in _FIELD_OPS[field]:
            shown = {"notin": "not in", "isnot": "is not"}.get(op, op)
            raise JqlError(f"The operator '{shown}' is not supported by the '{field}' field.")
        if op in ("is", "isnot"):
            tok = self.take()
            if not (tok.is_kw("empty") or tok.is_kw("null")):
                raise JqlError(f"The operator 'is' only takes EMPTY or NULL, not '{tok.text}'.")
            return Clause(field, op, ())
        if op in ("in", "notin"):
            self.expect_op("(")
            values = [self.value()]
            while (tok := self.peek()) is not None and tok.kind == "op" and tok.text == ",":
                self.take()
                values.append(self.value())
            self.expect_op(")")
            return Clause(field, op, tuple(values))
        return Clause(field, op, (self.value(),))

    def value(self) -> str:
        tok = self.take()
        if tok.kind == "op":
            raise JqlError(f"Error in the JQL Query: expecting a value but got '{tok.text}'.")
        if tok.kind == "word" and tok.text.lower() in _KEYWORDS:
            raise JqlError(
                f"Error in the JQL Query: '{tok.text}' is a reserved word; quote it to use it as a value."
            )
        if tok.kind == "word" and self._is_function_call():
            raise JqlError(f"The function '{tok.text}' is not supported by this Jira stand-in.")
        return tok.text

    def _is_function_call(self) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text == "("


def _field_name(tok: _Tok) -> str:
    if tok.kind == "op":
        raise JqlError(f"Error in the JQL Query: expecting a field name but got '{tok.text}'.")
    name = tok.text.lower()
    return _FIELD_ALIASES.get(name, name)


def parse(jql: str) -> Query:
    """Parse JQL into a `Query`; raises `JqlError` for anything outside the subset."""
    if len(jql) > MAX_JQL_LENGTH:
        raise JqlError(f"The JQL query is longer than {MAX_JQL_LENGTH} characters.")
    parser = _Parser(_tokenize(jql))
    return parser.query()


def parse_date(text: str, now: datetime) -> datetime:
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        sign, amount, unit = relative.groups()
        delta = timedelta(**{_UNITS[unit]: int(amount)})
        return now - delta if sign == "-" else now + delta
    for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise JqlError(
        f"Date value '{text}' for a date field is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period such as '-5d'."
    )


@dataclass(frozen=True)
class Vocabulary:
    """The values that exist, so a query naming an unknown project or status fails as in Jira."""

    projects: frozenset[str]  # lower-cased keys and names
    statuses: frozenset[str]  # lower-cased names


_CATEGORY_NAMES = {
    "new": ("to do", "new"),
    "indeterminate": ("in progress", "indeterminate"),
    "done": ("done",),
}


def compile_filter(query: Query, vocab: Vocabulary, now: datetime) -> Callable[[IssueView], bool]:
    """Validate the query's values and return a predicate over issues."""
    if query.where is None:
        return lambda _issue: True
    where = query.where
    _validate(where, vocab, now)
    return lambda issue: _matches(where, issue, now, negate=False)


def _validate(node: Node, vocab: Vocabulary, now: datetime) -> None:
    if isinstance(node, Bool):
        for child in node.children:
            _validate(child, vocab, now)
    elif isinstance(node, Not):
        _validate(node.child, vocab, now)
    else:
        known = {"project": vocab.projects, "status": vocab.statuses}.get(node.field)
        for value in node.values:
            if known is not None and value.lower() not in known:
                raise JqlError(f"The value '{value}' does not exist for the field '{node.field}'.")
            if node.field in ("created", "updated"):
                parse_date(value, now)
            if node.field == "statuscategory" and not any(
                value.lower() in names for names in _CATEGORY_NAMES.values()
            ):
                raise JqlError(f"The value '{value}' does not exist for the field 'statusCategory'.")


def _matches(node: Node, issue: IssueView, now: datetime, negate: bool) -> bool:
    # Negation is pushed down to the clauses (De Morgan), because Jira's NOT of a clause is the
    # clause's negated operator, which, like !=, never matches an empty field.
    if isinstance(node, Not):
        return _matches(node.child, issue, now, not negate)
    if isinstance(node, Bool):
        results = (_matches(child, issue, now, negate) for child in node.children)
        use_all = (node.op == "and") != negate
        return all(results) if use_all else any(results)
    op = _NEGATED[node.op] if negate else node.op
    return _clause(node.field, op, node.values, issue, now)


def _clause(field: str, op: str, values: tuple[str, ...], issue: IssueView, now: datetime) -> bool:
    if field in ("created", "updated"):
        return _compare_date(getattr(issue, field), op, parse_date(values[0], now))
    if field in ("summary", "text"):
        found = all(word in issue.summary.lower() for word in values[0].lower().split())
        return found if op == "~" else not found
    current = _field_values(field, issue)
    if op == "is":
        return not current
    if op == "isnot":
        return bool(current)
    wanted = {value.lower() for value in values}
    hit = bool(current & wanted)
    if op in ("=", "in"):
        return hit
    # != and NOT IN: an empty field never matches.
    return bool(current) and not hit


def _field_values(field: str, issue: IssueView) -> set[str]:
    if field == "project":
        return {issue.project_key.lower(), issue.project_name.lower()}
    if field == "status":
        return {issue.status.lower()}
    if field == "statuscategory":
        return set(_CATEGORY_NAMES[issue.status_category])
    if field == "issuetype":
        return {issue.issuetype.lower()}
    if field == "key":
        return {issue.key.lower()}
    return {label.lower() for label in issue.labels}


def _compare_date(actual: datetime, op: str, bound: datetime) -> bool:
    # JQL dates have minute precision, so "updated = '2026-01-01 10:00'" means within that minute.
    same_minute = bound <= actual < bound + timedelta(minutes=1)
    return {
        "=": same_minute,
        "!=": not same_minute,
        ">": actual > bound,
        ">=": actual >= bound,
        "<": actual < bound,
        "<=": actual <= bound,
    }[op]


def sort_key(order_by: tuple[tuple[str, bool], ...]) -> list[tuple[Callable[[IssueView], Any], bool]]:
    """Sort specs, most significant first; without ORDER BY, newest key first (as Jira returns them)."""
    if not order_by:
        return [(lambda issue: (issue.project_key, _key_number(issue.key)), True)]
    return [(_sort_value(field), descending) for field, descending in order_by]


def _sort_value(field: str) -> Callable[[IssueView], Any]:
    if field == "key":
        return lambda issue: (issue.project_key, _key_number(issue.key))
    if field == "project":
        return lambda issue: issue.project_key
    return lambda issue: getattr(issue, field)


def _key_number(key: str) -> int:
    return int(key.rsplit("-", 1)[1])


def order(issues: list[IssueView], query: Query) -> list[IssueView]:
    ordered = list(issues)
    for value, descending in reversed(sort_key(query.order_by)):
        ordered.sort(key=value, reverse=descending)
    return ordered
