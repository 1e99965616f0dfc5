"""``{{ expr }}`` templates: dotted lookups only, never code.

An expression is a path: a root (``outputs``, ``resources``, ``saved``,
``vars``, ``unique``, ``fake``, ``env``, ``stack``) and field names or ``[i]``
indices. A string that is exactly one template keeps the value's type
(``"{{ saved.count }}"`` stays an int); templates inside longer strings are
substituted as text. Expressions are checked at collection time
(:func:`check_template_string`) and evaluated per step (:func:`render`).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import inspect
import re
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.errors import TemplateError, closest, did_you_mean
from harness.scenarios.matchers import Matcher
from harness.scenarios.paths import PathError, Segment, get_path, parse_path
from harness.scenarios.template_text import TEMPLATE, placeholder_pattern, render_pattern, stringify

# Letters, digits, dots, dashes and [n] only: nothing that could call or import.
_EXPRESSION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+|\[-?\d+\])*")

ROOTS: dict[str, str] = {
    "outputs": "outputs.<OutputName> (a stack output)",
    "resources": "resources.<LogicalId> (a resource's physical id)",
    "saved": "saved.<name> (a value saved by an earlier step)",
    "vars": "vars.<name> (a value from `vars`)",
    "unique": "unique (an id unique to this run, worker and test)",
    "fake": "fake.<provider> (a Faker value, e.g. fake.email)",
    "env": "env.<NAME> (an environment variable)",
    "stack": "stack.name | stack.stage | stack.region",
}
STACK_FIELDS = ("name", "stage", "region")
# Faker attributes that are not value providers (reseeding mid-test would be a bug).
_NOT_PROVIDERS = frozenset(
    {
        "seed",
        "seed_instance",
        "seed_locale",
        "add_provider",
        "get_providers",
        "provider",
        "format",
        "parse",
        "set_formatter",
        "get_formatter",
        "set_arguments",
        "get_arguments",
        "del_arguments",
        "random",
        "unique",
        "optional",
        "weights",
        "locales",
        "factories",
        "items",
        "generator",
    }
)


def suggest(word: str, options: Collection[str], what: str = "valid") -> str:
    """``did you mean 'x'? valid: a, b, c`` for hints."""
    listed = ", ".join(sorted(options)) or "(none)"
    guess = did_you_mean(word, options)
    prefix = f"{guess} " if guess else ""
    return f"{prefix}{what}: {listed}"


def _roots_hint() -> str:
    return "templates are dotted paths such as {{ saved.order_id }}; roots: " + "; ".join(ROOTS.values())


def expressions(text: str) -> list[str]:
    """The expressions of all ``{{ }}`` in ``text``; an unclosed ``{{`` is an error."""
    found = [m.group(1) for m in TEMPLATE.finditer(text)]
    if "{{" in TEMPLATE.sub("", text):
        raise TemplateError(f"unclosed '{{{{' in {text!r}", hint="close every '{{' with '}}'")
    return found


def single_expression(text: str) -> str | None:
    """The expression if ``text`` is exactly one template (so the value keeps its type)."""
    m = TEMPLATE.fullmatch(text)
    if m is None or "{{" in m.group(1) or "}}" in m.group(1):
        return None
    return m.group(1)


def parse_expression(expr: str) -> tuple[str, tuple[Segment, ...]]:
    """Split ``saved.order.items[0]`` into its root and the path below it."""
    expr = expr.strip()
    if not expr:
        raise TemplateError("empty template '{{ }}'", hint=_roots_hint())
    if not _EXPRESSION.fullmatch(expr):
        raise TemplateError(
            f"'{{{{ {expr} }}}}' is not a dotted path; templates only look values up and never run code",
            hint=_roots_hint(),
        )
    try:
        segments = parse_path(expr)
    except PathError as exc:
        raise TemplateError(str(exc), hint=_roots_hint()) from None
    root, rest = str(segments[0]), segments[1:]
    if root not in ROOTS:
        raise TemplateError(f"unknown template root {root!r} in '{{{{ {expr} }}}}'", hint=suggest(root, ROOTS, "roots"))
    if root == "unique":
        if rest:
            raise TemplateError(f"'{{{{ {expr} }}}}': unique has no fields", hint="write {{ unique }}")
        return root, rest
    if not rest or not isinstance(rest[0], str):
        raise TemplateError(f"'{{{{ {expr} }}}}' needs a name after {root}", hint=f"write {ROOTS[root]}")
    if root in ("outputs", "resources", "env", "fake", "stack") and len(rest) != 1:
        raise TemplateError(f"'{{{{ {expr} }}}}': {root} takes exactly one name", hint=f"write {ROOTS[root]}")
    if root == "stack" and rest[0] not in STACK_FIELDS:
        raise TemplateError(
            f"'{{{{ {expr} }}}}': unknown stack field {rest[0]!r}",
            hint=suggest(str(rest[0]), STACK_FIELDS, "stack fields"),
        )
    return root, rest


def check_expression(
    expr: str,
    *,
    vars: Collection[str] | None = None,
    saved: Collection[str] | None = None,
    roots: Collection[str] | None = None,
) -> None:
    """Collection-time check: syntax, root, defined vars, earlier saves, Faker providers."""
    root, rest = parse_expression(expr)
    if roots is not None and root not in roots:
        raise TemplateError(
            f"'{{{{ {expr.strip()} }}}}': {root} cannot be used here", hint=f"usable here: {', '.join(sorted(roots))}"
        )
    name = str(rest[0]) if rest else ""
    if root == "vars" and vars is not None and name not in vars:
        raise TemplateError(f"vars.{name} is not defined", hint=suggest(name, vars, "defined vars"))
    if root == "saved" and saved is not None and name not in saved:
        raise TemplateError(
            f"saved.{name} is used before any step saves it",
            hint=f"add `save: {{{name}: <path>}}` to an earlier step; "
            + suggest(name, saved, "saved by earlier steps"),
        )
    if root == "fake":
        check_faker_provider(name)


def check_template_string(text: str, **kwargs: Any) -> None:
    """Check every template in ``text`` (see :func:`check_expression`)."""
    for expr in expressions(text):
        check_expression(expr, **kwargs)


@functools.cache
def _reference_faker() -> Any:
    from faker import Faker

    return Faker()


def check_faker_provider(name: str) -> None:
    """``name`` must be a Faker provider method callable without arguments."""
    fake = _reference_faker()
    providers = fake.get_providers()
    found = (
        not name.startswith("_")
        and name not in _NOT_PROVIDERS
        and any(callable(getattr(p, name, None)) for p in providers)
    )
    if not found:
        names = {n for p in providers for n in dir(p) if not n.startswith("_") and n not in _NOT_PROVIDERS}
        close = closest(name, sorted(names), n=3)
        hint = (f"did you mean {', '.join(f'fake.{c}' for c in close)}? " if close else "") + (
            "see https://faker.readthedocs.io/en/master/providers.html (e.g. fake.name, fake.email, fake.uuid4)"
        )
        raise TemplateError(f"fake.{name} is not a Faker provider", hint=hint)
    required = [
        p.name
        for p in inspect.signature(getattr(fake, name)).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise TemplateError(
            f"fake.{name} needs arguments ({', '.join(required)}); templates cannot pass any",
            hint="use a provider that takes no arguments, or put the value in vars",
        )


@dataclass
class TemplateContext:
    """Everything a template can look up while one scenario runs."""

    outputs: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, str] = field(default_factory=dict)
    saved: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    unique: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    stack: Mapping[str, str] = field(default_factory=dict)
    fake: Any = None


def evaluate(expr: str, ctx: TemplateContext) -> Any:
    """The value of one expression; a :class:`TemplateError` names what is missing."""
    root, rest = parse_expression(expr)
    if root == "unique":
        return ctx.unique
    name = str(rest[0])
    if root == "fake":
        if ctx.fake is None:
            raise TemplateError(f"fake.{name}: no Faker instance in this run")
        try:
            return jsonable(getattr(ctx.fake, name)())
        except (AttributeError, TypeError) as exc:
            raise TemplateError(f"fake.{name} failed: {exc}", hint="use a provider that takes no arguments") from None
    table: Mapping[str, Any] = {
        "outputs": ctx.outputs,
        "resources": ctx.resources,
        "saved": ctx.saved,
        "vars": ctx.vars,
        "env": ctx.env,
        "stack": ctx.stack,
    }[root]
    if name not in table:
        if root == "env":
            raise TemplateError(
                f"environment variable {name} is not set (used as {{{{ env.{name} }}}})",
                hint=f"export {name}=... before running pytest",
            )
        what = {
            "outputs": "stack outputs",
            "resources": "logical ids",
            "saved": "saved so far",
            "vars": "vars",
            "stack": "stack fields",
        }[root]
        raise TemplateError(f"{root}.{name} does not exist", hint=suggest(name, table, what))
    try:
        return get_path(table[name], rest[1:], root=f"{root}.{name}")
    except PathError as exc:
        raise TemplateError(f"'{{{{ {expr.strip()} }}}}': {exc}") from None


def render_string(text: str, ctx: TemplateContext) -> Any:
    """Render one string; exactly one template keeps the value's type."""
    if "{{" not in text:
        return text
    single = single_expression(text)
    if single is not None:
        return evaluate(single, ctx)
    expressions(text)  # rejects an unclosed '{{'
    return TEMPLATE.sub(lambda m: stringify(evaluate(m.group(1), ctx)), text)


def render(value: Any, ctx: TemplateContext) -> Any:
    """Render templates anywhere in ``value``; returns plain dicts and lists."""
    if isinstance(value, str):
        return render_string(value, ctx)
    if isinstance(value, Mapping):
        return {render(k, ctx) if isinstance(k, str) else k: render(v, ctx) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(v, ctx) for v in value]
    if isinstance(value, Matcher):
        return value.render(lambda v: render(v, ctx))
    return value


def jsonable(value: Any) -> Any:
    """Turn Faker's and DynamoDB's richer types into JSON-friendly values."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [jsonable(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    return value


__all__ = [
    "ROOTS",
    "TemplateContext",
    "TemplateError",
    "check_expression",
    "check_faker_provider",
    "check_template_string",
    "evaluate",
    "expressions",
    "jsonable",
    "parse_expression",
    "placeholder_pattern",
    "render",
    "render_pattern",
    "render_string",
    "single_expression",
    "stringify",
    "suggest",
]
