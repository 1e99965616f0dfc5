"""The JSON Schema of scenario files: generated from the loader's tables, shipped, and judged against the corpus.

Files are read as an editor reads them (the YAML language server): plain YAML,
duplicate keys refused, the matcher tags declared as custom tags (their
arguments unchecked). Every reference scenario file validates; every file of
the malformed corpus is rejected, except the ones listed in
:data:`LOADER_ONLY` with what only the loader can see, and those must pass the
schema (so the list stays exact).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from harness.scenarios import json_schema
from harness.scenarios.yamlio import TAGS

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = sorted([*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("reference-cdk/scenarios/*.yaml")])
VALID = [*REFERENCE, *sorted((ROOT / "tests/unit/scenarios/valid").glob("*.yaml"))]
MALFORMED = sorted((ROOT / "tests/unit/scenarios/malformed").glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema="

#: Malformed files only the loader rejects: what it sees that a JSON Schema cannot say.
LOADER_ONLY = {
    "absent_with_arg": "a matcher tag's argument (the editor knows the tags, not what they take)",
    "bad_gt": "a matcher tag's argument",
    "bad_regex": "a matcher tag's argument (the regular expression's syntax)",
    "matcher_outside_expect": "where a matcher tag stands (tags carry no type an editor can check)",
    "boolean_key": "a YAML 1.1 boolean key (`on`) inside a free-form item; editors read YAML 1.2 (a string)",
    "duplicate_scenario": "two scenarios with the same name (JSON Schema compares whole items only)",
    "saved_before_save": "a saved name used before the step that saves it (order between steps)",
    "undefined_var": "a var the template names is not defined (inside a free-form item)",
    "unknown_fake": "a Faker provider's name (inside a free-form item)",
}


class EditorLoader(yaml.SafeLoader):
    """YAML as the editor reads it: duplicate keys refused, matcher tags known, dates as text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = {k for k in keys if keys.count(k) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


for _tag in TAGS:
    EditorLoader.add_constructor(_tag, _tagged)
EditorLoader.add_constructor("tag:yaml.org,2002:timestamp", EditorLoader.construct_yaml_str)


def schema_verdict(path: Path) -> str | None:
    """None if the editor accepts ``path``; else why not."""
    try:
        data = yaml.load(path.read_text(), Loader=EditorLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return f"YAML: {exc}"
    errors = sorted(jsonschema.Draft7Validator(json_schema.scenario_schema()).iter_errors(data), key=str)
    return "; ".join(e.message for e in errors) or None


def test_the_schema_is_a_valid_draft_7_schema() -> None:
    jsonschema.Draft7Validator.check_schema(json_schema.scenario_schema())


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert json_schema.shipped() == json_schema.render(), (
        "harness/scenarios/scenario.schema.json is stale: regenerate it with "
        "`harness schema`'s source, `python -c 'from harness.scenarios.json_schema import render; "
        'print(render(), end="")\' > harness/scenarios/scenario.schema.json`'
    )


def test_every_registered_action_is_in_the_schema() -> None:
    from harness.scenarios.actions import ACTIONS

    step = json_schema.scenario_schema()["definitions"]["step"]
    for name, act in ACTIONS.items():
        assert name in step["properties"], name
        assert set(step["properties"][name]["properties"]) >= set(act.fields), name


@pytest.mark.parametrize("path", VALID, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_reference_scenario_file_validates(path: Path) -> None:
    assert schema_verdict(path) is None


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_the_malformed_corpus_gets_the_loaders_verdict(path: Path) -> None:
    verdict = schema_verdict(path)
    if path.stem in LOADER_ONLY:
        assert verdict is None, f"the schema now rejects {path.name}: take it off LOADER_ONLY ({verdict})"
    else:
        assert verdict is not None, f"the loader rejects {path.name}; the schema accepts it"


def test_the_loader_only_list_names_real_files() -> None:
    assert set(LOADER_ONLY) <= {p.stem for p in MALFORMED}
    assert len(MALFORMED) - len(LOADER_ONLY) >= 15


@pytest.mark.parametrize("path", REFERENCE, ids=lambda p: str(p.relative_to(ROOT)))
def test_reference_files_name_the_shipped_schema(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(SCHEMA_LINE), first
    target = (path.parent / first[len(SCHEMA_LINE) :].strip()).resolve()
    assert target == ROOT / "harness" / "scenarios" / json_schema.SCHEMA_FILE


def test_harness_schema_prints_it_on_stdout_only() -> None:
    result = subprocess.run(  # noqa: S603 - argv list
        [sys.executable, "-m", "harness.cli", "schema"], capture_output=True, text=True, check=False, cwd=ROOT.parent
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) == json_schema.scenario_schema()


def test_editor_custom_tags_cover_every_matcher_tag() -> None:
    tags = json_schema.editor_custom_tags()
    assert {t.split()[0] for t in tags} == set(TAGS)
