"""The JSON Schema of scenario files, generated from the tables the loader validates with.

Editors (the YAML language server behind VS Code, JetBrains IDEs) complete and
check a scenario file from it. Everything comes from the loader's own tables:
the top-level and scenario keys (``loader.TOP_FIELDS``, ``SCENARIO_FIELDS``,
``STEP_META``), every registered action's argument table and observation
fields (``actions.ACTIONS``), nested tables (:class:`schema.Field` ``items``),
the actions ``wait.until`` may repeat (``steps.WAITABLE``), the template roots
(``templating.ROOTS``). A new action registered with ``@action`` is in the
schema without any edit here; a unit test fails when the shipped
``scenario.schema.json`` differs from what this module generates.

What a schema cannot say, the loader still checks when pytest collects the
file: matcher tags and their arguments, templates' vars and saved names
(defined, saved by an earlier step), Faker providers, duplicate scenario
names, and the rules between an action's arguments (``http`` takes ``api`` or
``url``, ...). ``tests/unit/scenarios/test_json_schema.py`` names each
malformed file of the corpus that only the loader rejects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from harness.scenarios import loader
from harness.scenarios.actions import ACTIONS, Action
from harness.scenarios.schema import Field
from harness.scenarios.steps import WAITABLE
from harness.scenarios.templating import ROOTS
from harness.scenarios.yamlio import TAGS

#: Where the generated schema ships, inside the package.
SCHEMA_FILE = "scenario.schema.json"
DRAFT = "http://json-schema.org/draft-07/schema#"
_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
_TYPES = {
    "str": "string",
    "int": "integer",
    "number": "number",
    "bool": "boolean",
    "mapping": "object",
    "list": "array",
}
_SCALARS = {"str", "int", "number", "bool"}
# A string of only one template, e.g. "{{ vars.limit }}": its type is known once rendered.
_ONE_TEMPLATE = r"^\s*\{\{[^{}]*\}\}\s*$"


def _template_text() -> str:
    """A string whose every ``{{ }}`` is a dotted path from a known root (as the loader parses it)."""
    roots = "|".join(sorted(ROOTS))
    path = rf"\s*(?:{roots})(?:\.[A-Za-z0-9_-]+|\[-?\d+\])*\s*"
    return rf"^(?:[^{{]|\{{(?!\{{)|\{{\{{{path}\}}\}})*$"


def field_schema(spec: Field) -> dict[str, Any]:
    """One key's schema from its :class:`Field`."""
    alternatives: list[dict[str, Any]] = []
    for kind in spec.kinds:
        if kind == "any":
            return _described({}, spec)
        one: dict[str, Any] = {"type": _TYPES[kind]}
        if kind == "str":
            one["pattern"] = _template_text()
            if spec.choices:
                one = {"enum": list(spec.choices)}
        if spec.minimum is not None and kind in ("int", "number"):
            one["minimum"] = spec.minimum
        if kind == "list" and spec.items is not None:
            one["minItems"] = 1
            one["items"] = object_schema(spec.items)
        alternatives.append(one)
    if _SCALARS & set(spec.kinds) and not ("str" in spec.kinds and not spec.choices):
        alternatives.append({"type": "string", "pattern": _ONE_TEMPLATE})
    out = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    return _described(out, spec)


def _described(schema: dict[str, Any], spec: Field) -> dict[str, Any]:
    if spec.example:
        schema = {**schema, "description": f"e.g. {spec.example}"}
    return schema


def object_schema(fields: Mapping[str, Field], **extra: Any) -> dict[str, Any]:
    """A mapping with only these keys, the required ones present."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": {key: field_schema(spec) for key, spec in fields.items()},
        "additionalProperties": False,
    }
    required = [key for key, spec in fields.items() if spec.required]
    if required:
        out["required"] = required
    return {**out, **extra}


def action_schema(act: Action) -> dict[str, Any]:
    """An action's arguments; empty (null) only when it requires none."""
    doc = (act.run.__doc__ or "").strip().splitlines()
    args = object_schema(act.fields, description=f"{doc[0] if doc else act.name} e.g. {act.example}")
    if act.name == "wait":
        args["properties"]["until"] = {
            "description": "an action re-run until the step's expect matches",
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {name: action_schema(ACTIONS[name]) for name in WAITABLE},
            "additionalProperties": False,
        }
    if "required" in args:
        return args
    return {**args, "type": ["object", "null"]}


def _observed(fields: tuple[str, ...]) -> dict[str, Any]:
    """``expect`` and ``save`` of a step whose action observes ``fields``."""
    if not fields:
        return {"not": {"anyOf": [{"required": ["expect"]}, {"required": ["save"]}]}}
    names = "|".join(fields)
    return {
        "properties": {
            "expect": {"if": {"type": "object"}, "then": {"propertyNames": {"enum": list(fields)}}},
            "save": {"additionalProperties": {"pattern": rf"^\s*(?:{names})(?:[.\[].*)?$"}},
        }
    }


def _one_action(act: Action) -> dict[str, Any]:
    """The branch of a step that holds ``act``: its expect and save follow what it observes."""
    branch: dict[str, Any] = {"required": [act.name]}
    if act.observes_for is None:
        branch.update(_observed(act.observes))
    if act.name == "wait":  # the loader's rule: wait.until stops when the step's expect matches
        branch["if"] = {"properties": {"wait": {"type": "object", "required": ["until"]}}}
        branch["then"] = {"required": ["expect"]}
    return branch


def step_schema() -> dict[str, Any]:
    meta = {
        "name": {"type": "string", "pattern": r"\S", "description": "what the step checks (default: a summary)"},
        "expect": {"description": "what the action's observation must match (matchers allowed)"},
        "save": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {"type": "string"},
            "description": "names to paths in the observation, e.g. save: {order_id: body.order_id}",
        },
    }
    assert set(meta) == set(loader.STEP_META), "every step key the loader knows has a schema"
    return {
        "type": "object",
        "properties": {**meta, **{name: action_schema(act) for name, act in ACTIONS.items()}},
        "additionalProperties": False,
        "oneOf": [_one_action(act) for act in ACTIONS.values()],
    }


def _vars() -> dict[str, Any]:
    return {"type": "object", "propertyNames": {"pattern": _NAME}}


def _scenario() -> dict[str, Any]:
    out = object_schema(loader.SCENARIO_FIELDS)
    props = out["properties"]
    props["name"] = {**props["name"], "type": "string", "pattern": r"^(?!\s*$)(?![\s\S]*::)[^\n]*$"}
    props["vars"] = _vars()
    props["steps"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/step"}}
    props["marks"] = {
        "type": "array",
        "items": {
            "anyOf": [
                {"type": "string", "pattern": _NAME},
                {"type": "object", "minProperties": 1, "maxProperties": 1, "propertyNames": {"pattern": _NAME}},
            ]
        },
    }
    return out


def scenario_schema() -> dict[str, Any]:
    """The whole schema of a scenario file."""
    top = object_schema(loader.TOP_FIELDS)
    top["properties"]["vars"] = _vars()
    top["properties"]["scenarios"] = {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/scenario"}}
    return {
        "$schema": DRAFT,
        "title": "pytest-branchstack scenario file",
        "description": "Scenarios run against the branch stack (harness/scenarios/FORMAT.md). "
        "Matcher tags for the editor: " + " ".join(TAGS),
        **top,
        "definitions": {"scenario": _scenario(), "step": step_schema()},
    }


def render() -> str:
    """The schema as the shipped file holds it (stable key order, newline at the end)."""
    return json.dumps(scenario_schema(), indent=2) + "\n"


def shipped() -> str:
    """The schema file shipped in the package."""
    return resources.files("harness.scenarios").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


# The YAML nodes a matcher tag stands on (yamlio's constructors); the others take a scalar.
_TAG_NODES = {
    "!between": ("sequence",),
    "!contains": ("scalar", "sequence", "mapping"),
    "!exact": ("sequence", "mapping"),
}


def editor_custom_tags() -> list[str]:
    """``yaml.customTags`` for the YAML language server: each matcher tag and the nodes it stands on."""
    assert set(_TAG_NODES) <= set(TAGS)
    return [f"{tag} {kind}" for tag in TAGS for kind in _TAG_NODES.get(tag, ("scalar",))]


def vscode_settings() -> str:
    """The VS Code ``settings.json`` entries for a project's scenario files (README)."""
    settings = {
        "yaml.schemas": {".vscode/scenario.schema.json": ["scenarios/**/*.yaml", "scenarios/**/*.yml"]},
        "yaml.customTags": editor_custom_tags(),
    }
    return json.dumps(settings, indent=2)
