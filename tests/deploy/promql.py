"""A lexical reading of PromQL expressions, for checking alert rules offline.

There is no promtool here, so this is not a parser: it tokenises an expression,
checks that brackets balance, that every call is a PromQL function or
aggregation, that range selectors are valid durations and that label matchers
are ``label op "value"``; and it reports which metrics, matchers and grouping
labels the expression uses, so tests can compare them with the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FUNCTIONS = frozenset(
    {
        "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp",
        "clamp_max", "clamp_min", "count_over_time", "day_of_month", "day_of_week", "delta",
        "deriv", "exp", "floor", "histogram_quantile", "holt_winters", "hour", "idelta",
        "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log2",
        "log10", "max_over_time", "min_over_time", "minute", "month", "predict_linear",
        "present_over_time", "quantile_over_time", "rate", "resets", "round", "scalar", "sgn",
        "sort", "sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time",
        "time", "timestamp", "vector", "year",
    }
)  # fmt: skip
AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
     "bottomk", "topk", "quantile"}
)  # fmt: skip
#: Keywords followed by a parenthesised label list.
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OPERATORS = frozenset({"and", "or", "unless", "bool", "offset"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<range>\[[^\]]*\])
    | (?P<number>[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<match>=~|!~|!=)
    | (?P<compare>==|>=|<=|>|<)
    | (?P<equal>=)
    | (?P<arith>[-+*/%^])
    | (?P<bracket>[(){}])
    | (?P<comma>,)
    """,
    re.VERBOSE,
)
_DURATION = re.compile(r"^([0-9]+(ms|[smhdwy]))+$")
_CLOSING = {"(": ")", "{": "}"}


class PromQLError(ValueError):
    """The expression is not well formed."""


@dataclass
class Expr:
    """What an expression uses."""

    metrics: set[str] = field(default_factory=set)
    #: (metric, label, operator, value) for every matcher inside a selector's braces.
    matchers: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: Labels named in by/without/on/ignoring/group_left/group_right lists.
    grouping: set[str] = field(default_factory=set)


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        m = _TOKEN.match(expr, position)
        if m is None:
            raise PromQLError(f"unexpected {expr[position : position + 10]!r} at {position}")
        assert m.lastgroup is not None
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
        position = m.end()
    return out


def _range(text: str) -> None:
    inner = text[1:-1]
    window, _, step = inner.partition(":")
    if not _DURATION.match(window) or (step and not _DURATION.match(step)):
        raise PromQLError(f"bad range {text}")


def read(expr: str) -> Expr:
    """Check ``expr`` lexically and say what it uses (raises PromQLError)."""
    tokens = _tokens(expr)
    result = Expr()
    stack: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "range":
            _range(text)
        elif kind == "bracket" and text in _CLOSING:
            stack.append(text)
        elif kind == "bracket":
            if not stack or _CLOSING[stack.pop()] != text:
                raise PromQLError(f"unbalanced {text!r}")
        elif kind == "ident" and text in LABEL_LISTS:
            if following != ("bracket", "("):
                raise PromQLError(f"{text} needs a label list")
            i = _label_list(tokens, i + 2, result.grouping)
            continue
        elif kind == "ident" and text in AGGREGATIONS:
            pass  # its parenthesis may come after a by/without list
        elif kind == "ident" and following == ("bracket", "("):
            if text not in FUNCTIONS:
                raise PromQLError(f"unknown function {text}")
        elif kind == "ident" and text not in OPERATORS:
            result.metrics.add(text)
            if following == ("bracket", "{"):
                i = _matchers(tokens, i + 2, text, result.matchers)
                continue
        elif kind == "equal":
            raise PromQLError("'=' outside a label matcher (did you mean '=='?)")
        i += 1
    if stack:
        raise PromQLError(f"unclosed {stack[-1]!r}")
    return result


def _label_list(tokens: list[tuple[str, str]], i: int, into: set[str]) -> int:
    """Read ``a, b)`` from ``i``; the index after the closing parenthesis."""
    while i < len(tokens):
        kind, text = tokens[i]
        if (kind, text) == ("bracket", ")"):
            return i + 1
        if kind == "ident":
            into.add(text)
        elif kind != "comma":
            raise PromQLError(f"unexpected {text!r} in a label list")
        i += 1
    raise PromQLError("unclosed label list")


def _matchers(
    tokens: list[tuple[str, str]], i: int, metric: str, into: list[tuple[str, str, str, str]]
) -> int:
    """Read ``label op "value", ...}`` from ``i``; the index after the closing brace."""
    while i < len(tokens):
        if tokens[i] == ("bracket", "}"):
            return i + 1
        if tokens[i][0] == "comma":
            i += 1
            continue
        try:
            (k1, label), (k2, op), (k3, value) = tokens[i : i + 3]
        except ValueError:
            break
        if k1 != "ident" or k2 not in ("equal", "match") or k3 != "string":
            raise PromQLError(f"bad label matcher after {metric}{{: {label} {op} {value}")
        into.append((metric, label, op, value[1:-1]))
        i += 3
    raise PromQLError(f"unclosed selector {metric}{{")
