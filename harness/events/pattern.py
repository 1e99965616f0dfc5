"""EventBridge event patterns: validation and matching, as AWS documents them.

One pure implementation, used wherever the harness judges an event (an
EventBridge event, an SNS message, a Step Functions execution's input):

* a pattern is a JSON object whose keys follow the event's structure; a key
  holding an object descends, a key holding a list is a *leaf*: the event's
  value there must match one element of the list (an event value that is a
  list matches when one of its elements does);
* every key of the pattern must match (AND); the elements of a leaf are
  alternatives (OR), and so are the branches of ``$or``;
* an element is a literal (string, number, ``null``; exact, case-sensitive,
  numbers by value) or one filter: ``prefix``, ``suffix`` (both also with
  ``{"equals-ignore-case": ...}``), ``equals-ignore-case``, ``anything-but``
  (a value, a list, or ``prefix``/``suffix``/``equals-ignore-case``/``wildcard``),
  ``numeric`` (one or two comparisons), ``exists``, ``cidr``, ``wildcard``.

Filters work on leaf values only, like EventBridge (an object or an empty
list in the event is not a leaf, so ``exists: false`` matches there).
:func:`validate` refuses what EventBridge refuses, naming the bad key.
Source: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

from harness.errors import PatternError, did_you_mean

OPERATORS = ("prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr", "wildcard")
_NUMERIC_OPS = ("<", "<=", "=", ">", ">=")
_MISSING = object()
_EXAMPLE = 'e.g. {"detail-type": ["OrderAudited"], "detail": {"total": [{"numeric": [">", 100]}]}}'

# -- validation --------------------------------------------------------------


def validate(pattern: Any, path: str = "") -> None:
    """Raise :class:`PatternError` naming the first key EventBridge would refuse."""
    if not isinstance(pattern, Mapping) or not pattern:
        raise PatternError(path, f"a pattern must be a non-empty mapping, not {_kind(pattern)}", hint=_EXAMPLE)
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else str(key)
        if key == "$or":
            _validate_or(value, where)
        elif isinstance(value, Mapping):
            validate(value, where)
        elif isinstance(value, list):
            _validate_leaf(value, where)
        else:
            raise PatternError(
                where,
                f"a value to match must be in a list, not {_kind(value)}",
                hint=f"write {key}: [{json.dumps(value, default=str)}] (the list holds the alternatives)",
            )


def _validate_or(value: Any, where: str) -> None:
    if not isinstance(value, list) or len(value) < 2:
        raise PatternError(
            where, "$or takes a list of at least two patterns", hint='e.g. "$or": [{"a": [1]}, {"b": [2]}]'
        )
    for i, branch in enumerate(value):
        validate(branch, f"{where}[{i}]")


def _validate_leaf(values: list[Any], where: str) -> None:
    if not values:
        raise PatternError(where, "an empty list matches nothing", hint="list at least one value or filter")
    for i, element in enumerate(values):
        if isinstance(element, Mapping):
            _validate_filter(element, f"{where}[{i}]")
        elif isinstance(element, list):
            raise PatternError(f"{where}[{i}]", "a list inside a list is not a pattern", hint="flatten the values")
        elif isinstance(element, bool):
            raise PatternError(
                f"{where}[{i}]", "true/false cannot be matched by EventBridge", hint="match a string or number"
            )


def _validate_filter(element: Mapping[str, Any], where: str) -> None:
    if len(element) != 1:
        raise PatternError(where, f"a filter has exactly one operator, not {len(element)}", hint=_ops_hint(""))
    op, arg = next(iter(element.items()))
    where = f"{where}.{op}"
    if op not in OPERATORS:
        raise PatternError(where, f"unknown operator {op!r}", hint=_ops_hint(str(op)))
    check = _CHECKS[op]
    problem = check(arg)
    if problem:
        raise PatternError(where, problem, hint=_HINTS[op])


def _ops_hint(op: str) -> str:
    guess = did_you_mean(op, OPERATORS) if op else ""
    return (guess + " " if guess else "") + "operators: " + ", ".join(OPERATORS)


def _affix(arg: Any) -> str | None:
    if isinstance(arg, Mapping) and set(arg) == {"equals-ignore-case"}:
        arg = arg["equals-ignore-case"]
    return None if isinstance(arg, str) else f"takes a string, not {_kind(arg)}"


def _text(arg: Any) -> str | None:
    return None if isinstance(arg, str) else f"takes a string, not {_kind(arg)}"


def _exists(arg: Any) -> str | None:
    return None if isinstance(arg, bool) else f"takes true or false, not {_kind(arg)}"


def _cidr(arg: Any) -> str | None:
    try:
        ipaddress.ip_network(str(arg), strict=False)
    except ValueError:
        return f"{arg!r} is not a CIDR block"
    return None if isinstance(arg, str) else f"takes a string, not {_kind(arg)}"


def _wildcard(arg: Any) -> str | None:
    if not isinstance(arg, str):
        return f"takes a string, not {_kind(arg)}"
    if "**" in arg:
        return f"{arg!r} has consecutive wildcard characters"
    if re.search(r"\\(?![*\\])", arg):
        return f"{arg!r} escapes a character other than * or \\"
    return None


def _numeric(arg: Any) -> str | None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        return "takes one or two comparisons, like ['>', 0] or ['>=', 0, '<', 10]"
    for op, number in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            return f"{op!r} is not a comparison ({', '.join(_NUMERIC_OPS)})"
        if not _is_number(number):
            return f"{number!r} is not a number"
    if len(arg) == 4 and (arg[0] not in (">", ">=") or arg[2] not in ("<", "<=") or arg[1] > arg[3]):
        return "a range is a lower bound (> or >=) then a higher upper bound (< or <=)"
    return None


def _anything_but(arg: Any) -> str | None:
    if isinstance(arg, Mapping):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            return "nests one of prefix, suffix, equals-ignore-case, wildcard"
        inner, value = next(iter(arg.items()))
        values = value if isinstance(value, list) and inner in ("equals-ignore-case", "wildcard") else [value]
        problems = [p for v in values if (p := (_wildcard(v) if inner == "wildcard" else _text(v)))]
        return problems[0] if problems else None
    values = arg if isinstance(arg, list) else [arg]
    if not values or not all(isinstance(v, str) for v in values) and not all(_is_number(v) for v in values):
        return "takes a string, a number, or a list of only strings or only numbers"
    return None


_CHECKS = {
    "prefix": _affix,
    "suffix": _affix,
    "equals-ignore-case": _text,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "cidr": _cidr,
    "wildcard": _wildcard,
}
_HINTS = {
    "prefix": 'e.g. {"prefix": "us-"} or {"prefix": {"equals-ignore-case": "us-"}}',
    "suffix": 'e.g. {"suffix": ".png"}',
    "equals-ignore-case": 'e.g. {"equals-ignore-case": "alice"}',
    "anything-but": 'e.g. {"anything-but": ["stopped", "failed"]} or {"anything-but": {"prefix": "init"}}',
    "numeric": 'e.g. {"numeric": [">", 0, "<=", 5]}',
    "exists": 'e.g. {"exists": false}',
    "cidr": 'e.g. {"cidr": "10.0.0.0/24"}',
    "wildcard": 'e.g. {"wildcard": "orders/*.json"}',
}

# -- matching ----------------------------------------------------------------


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether ``event`` (a decoded JSON value) matches ``pattern`` (assumed valid)."""
    return mismatch(pattern, event) is None


def mismatch(pattern: Mapping[str, Any], event: Any, path: str = "") -> str | None:
    """``None`` when ``event`` matches, else why not (the first key that did not match)."""
    for key, expected in pattern.items():
        where = f"{path}.{key}" if path else str(key)
        if key == "$or":
            reasons = [mismatch(branch, event, path) for branch in expected]
            if all(reasons):
                return f"{path or 'event'}: no branch of $or matched ({'; '.join(str(r) for r in reasons)})"
            continue
        value = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            reason = _descend(expected, value, where)
        else:
            reason = _leaf(expected, value, where)
        if reason:
            return reason
    return None


def _descend(pattern: Mapping[str, Any], value: Any, where: str) -> str | None:
    if isinstance(value, list):  # a list of objects: one of them must match
        reasons = [mismatch(pattern, v, where) for v in value]
        if reasons and not all(reasons):
            return None
        return reasons[0] if reasons else f"{where}: the list is empty"
    if value is _MISSING:
        # Only exists:false leaves can match under a missing object.
        return mismatch(pattern, {}, where)
    return mismatch(pattern, value, where)


def _leaf(alternatives: list[Any], value: Any, where: str) -> str | None:
    leaves = _leaf_values(value)
    for element in alternatives:
        if isinstance(element, Mapping) and "exists" in element:
            if bool(leaves) == element["exists"]:
                return None
            continue
        if any(_element_matches(element, v) for v in leaves):
            return None
    shown = "missing" if value is _MISSING else json.dumps(value, default=str)
    return f"{where}: {shown} does not match {json.dumps(alternatives)}"


def _leaf_values(value: Any) -> list[Any]:
    """The leaf values at a key: none when missing, an object, or an empty list."""
    if value is _MISSING or isinstance(value, Mapping):
        return []
    if isinstance(value, list):
        return [v for v in value if not isinstance(v, Mapping | list)]
    return [value]


def _element_matches(element: Any, value: Any) -> bool:
    if not isinstance(element, Mapping):
        return _equal(element, value)
    op, arg = next(iter(element.items()))
    return bool(_MATCHERS[op](arg, value))


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or value is None:
        return expected is None and value is None
    if _is_number(expected) and _is_number(value):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _affix_matches(arg: Any, value: Any, test: str) -> bool:
    if not isinstance(value, str):
        return False
    if isinstance(arg, Mapping):
        arg, value = arg["equals-ignore-case"].casefold(), value.casefold()
    return bool(getattr(value, test)(arg))


def _ignore_case(arg: Any, value: Any) -> bool:
    return isinstance(value, str) and value.casefold() == str(arg).casefold()


def _numeric_matches(arg: list[Any], value: Any) -> bool:
    if not _is_number(value):
        return False
    compare = {"<": float.__lt__, "<=": float.__le__, "=": float.__eq__, ">": float.__gt__, ">=": float.__ge__}
    return all(compare[op](float(value), float(n)) for op, n in zip(arg[::2], arg[1::2], strict=True))


def _cidr_matches(arg: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
    except ValueError:
        return False


def wildcard_regex(arg: str) -> re.Pattern[str]:
    """``*`` is any run of characters; ``\\*`` a star and ``\\\\`` a backslash."""
    parts = re.split(r"(\\\\|\\\*|\*)", arg)
    text = "".join(".*" if p == "*" else re.escape(p[-1]) if p in ("\\*", "\\\\") else re.escape(p) for p in parts)
    return re.compile(text, re.DOTALL)


def _wildcard_matches(arg: str, value: Any) -> bool:
    return isinstance(value, str) and wildcard_regex(arg).fullmatch(value) is not None


def _anything_but_matches(arg: Any, value: Any) -> bool:
    if isinstance(arg, Mapping):
        inner, operand = next(iter(arg.items()))
        if not isinstance(value, str):
            return False
        operands = operand if isinstance(operand, list) else [operand]
        return not any(_MATCHERS[inner](o, value) for o in operands)
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_equal(x, value) for x in excluded)


_MATCHERS: dict[str, Any] = {
    "prefix": lambda arg, value: _affix_matches(arg, value, "startswith"),
    "suffix": lambda arg, value: _affix_matches(arg, value, "endswith"),
    "equals-ignore-case": _ignore_case,
    "anything-but": _anything_but_matches,
    "numeric": _numeric_matches,
    "cidr": _cidr_matches,
    "wildcard": _wildcard_matches,
}

# -- helpers -----------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", str: "a string", int: "a number", float: "a number", list: "a list"}.get(
        type(value), "a mapping" if isinstance(value, Mapping) else type(value).__name__
    )
