"""CloudFormation's YAML templates are parsed by libyaml, PyYAML's C parser, where it is there.

MiniStack 1.5.33 parses a YAML template (``engine._parse_template``) with
``CfnLoader``, PyYAML's pure-Python ``SafeLoader`` with constructors for the
short-form intrinsics (``!Ref``, ``!GetAtt``, ``!Sub``...): about 40 ms of the
emulator's CPU for the reference stack's 9 KB SAM template, at every
``CreateChangeSet``, ``CreateStack``, ``UpdateStack``, ``ValidateTemplate``,
``GetTemplateSummary`` and ``GetTemplate`` of the Processed stage (which parses
the original body again only to learn whether it declares a transform: the
harness reads it for every run's fidelity warnings, while the emulator also
answers the run's drift detection and runtime check, in one process).

The adaptation: the same loader with libyaml's parser underneath
(``yaml.CSafeLoader`` with ``CfnLoader``'s constructors, the same resolver):
about 4 ms for that template, the same documents. Only the parsing of the
text into events differs, and both parsers implement YAML 1.1 (the pure one is
a port of libyaml). A text libyaml refuses, or whose document is not a mapping,
goes to the shipped ``_parse_template``: its answer or its error, as before.
Without libyaml (a PyYAML built without it) nothing changes.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.emulator import guard

NAME = "cloudformation-templates-parsed-by-libyaml"
ENGINE = "ministack.services.cloudformation.engine"
#: The modules that hold ``_parse_template`` by name (``from .engine import _parse_template``).
BOUND_IN = ("ministack.services.cloudformation.handlers", "ministack.services.cloudformation.changesets")


def fast_loader(shipped: type) -> type | None:
    """``shipped``'s constructors on libyaml's parser; None without libyaml."""
    import yaml

    base = getattr(yaml, "CSafeLoader", None)
    if base is None:
        return None
    loader = type("CfnCLoader", (base,), {})
    loader.yaml_constructors = dict(shipped.yaml_constructors)  # type: ignore[attr-defined]
    loader.yaml_multi_constructors = dict(shipped.yaml_multi_constructors)  # type: ignore[attr-defined]
    loader.yaml_implicit_resolvers = dict(shipped.yaml_implicit_resolvers)  # type: ignore[attr-defined]
    return loader


def apply() -> None:
    """Parse YAML templates with libyaml where it parses them to a mapping; the shipped parser otherwise."""
    import yaml

    engine = guard.module(ENGINE, NAME)
    original = guard.function(engine, "_parse_template", ("template_body",), NAME)
    shipped = getattr(engine, "CfnLoader", None)
    if not (isinstance(shipped, type) and issubclass(shipped, yaml.SafeLoader)):
        raise guard.AdaptationError(f"{NAME}: {ENGINE}.CfnLoader is missing or no longer a SafeLoader")
    guard.calls_by_name(engine, "_parse_template", "CfnLoader", NAME)
    bound = [guard.module(name, NAME) for name in BOUND_IN]
    for mod in bound:
        if getattr(mod, "_parse_template", None) is not original and not guard.adapted(mod._parse_template, NAME):
            raise guard.AdaptationError(f"{NAME}: {mod.__name__}._parse_template is no longer the engine's")
    if guard.adapted(original, NAME):
        return
    loader = fast_loader(shipped)
    if loader is None:
        return

    @functools.wraps(original)
    def _parse_template(template_body: Any) -> Any:
        if isinstance(template_body, str):
            text = template_body.strip()
            if not text.startswith("{"):
                try:
                    result = yaml.load(text, Loader=loader)  # noqa: S506 - SafeLoader's constructors
                except yaml.YAMLError:
                    result = None
                if isinstance(result, dict):
                    return result
        return original(template_body)

    adapted = guard.mark(_parse_template, NAME)
    engine._parse_template = adapted
    for mod in bound:
        mod._parse_template = adapted
