"""DynamoDB values: plain YAML/JSON in, plain JSON out (no Decimal, no sets).

Scenario authors write ``qty: 2`` and ``total: 9.5``; boto3's serializer
wants Decimal, and its deserializer returns Decimal, sets and Binary. This
module converts both ways and builds key-condition expressions.
"""

from __future__ import annotations

import base64
import decimal
from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from harness.scenarios.actions import StepError
from harness.scenarios.templating import jsonable

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _to_decimal(value: Any) -> Any:
    # boto3's serializer refuses float; Decimal(str(x)) keeps what was written.
    if isinstance(value, float):
        return decimal.Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_decimal(v) for v in value]
    return value


def to_dynamo(item: Any, what: str) -> dict[str, Any]:
    """Plain JSON values -> DynamoDB attribute values."""
    if not isinstance(item, Mapping):
        raise StepError(f"{what} must be a mapping of attribute names to values, got {item!r}")
    try:
        return {str(k): _SERIALIZER.serialize(_to_decimal(v)) for k, v in item.items()}
    except (TypeError, ValueError, decimal.DecimalException) as exc:
        raise StepError(f"{what} cannot be stored in DynamoDB: {exc}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Binary):
        return base64.b64encode(value.value).decode("ascii")
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return jsonable({_plain(v) for v in value})
    return jsonable(value)


def from_dynamo(raw: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values -> plain JSON values (Decimal back to int/float)."""
    return {k: _plain(_DESERIALIZER.deserialize(v)) for k, v in raw.items()}


KEY_OPS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "begins_with": None, "between": None}


def key_condition_expression(cond: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """KeyConditionExpression, names and values for ``{attr: value | {op: arg}}``."""
    parts, names, values = [], {}, {}
    for i, (attr, spec) in enumerate(cond.items()):
        name, value = f"#k{i}", f":v{i}"
        names[name] = str(attr)
        op, arg = next(iter(spec.items())) if isinstance(spec, Mapping) else ("eq", spec)
        if op == "begins_with":
            parts.append(f"begins_with({name}, {value})")
            values[value] = arg
        elif op == "between":
            if not isinstance(arg, list) or len(arg) != 2:
                raise StepError(f"key_condition.{attr}.between takes [low, high], got {arg!r}")
            parts.append(f"{name} BETWEEN {value}a AND {value}b")
            values[f"{value}a"], values[f"{value}b"] = arg
        else:
            parts.append(f"{name} {KEY_OPS[op]} {value}")
            values[value] = arg
    return " AND ".join(parts), names, to_dynamo(values, "key_condition")
