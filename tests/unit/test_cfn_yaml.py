"""CloudFormation templates parsed by libyaml: the same documents as the emulator's own parser, its errors kept."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest
import yaml

from harness.emulator import adapt, cfn_yaml, guard

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML without libyaml: nothing changes")


def _templates() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    found = [ROOT / p for p in listed.stdout.split() if "scenarios" not in p and "/.github/" not in f"/{p}"]
    return [p for p in found if "AWSTemplateFormatVersion" in p.read_text() or "Resources:" in p.read_text()]


def test_every_template_of_the_project_parses_to_the_same_document() -> None:
    engine = guard.module(cfn_yaml.ENGINE, cfn_yaml.NAME)
    loader = cfn_yaml.fast_loader(engine.CfnLoader)
    templates = _templates()
    assert len(templates) >= 25  # the reference stack, the e2e and conformance stacks
    for path in templates:
        text = path.read_text().strip()
        assert yaml.load(text, Loader=loader) == yaml.load(text, Loader=engine.CfnLoader), path  # noqa: S506


def test_applied_once_and_the_shipped_parser_answers_what_libyaml_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = guard.module(cfn_yaml.ENGINE, cfn_yaml.NAME)
    bound = [guard.module(name, cfn_yaml.NAME) for name in cfn_yaml.BOUND_IN]
    original = engine._parse_template
    for mod in (engine, *bound):  # restored after the test: this process's modules stay as shipped
        monkeypatch.setattr(mod, "_parse_template", original)
    shipped_calls: list[str] = []

    @functools.wraps(original)
    def shipped(template_body: str) -> object:  # the shipped parser, counting its calls
        shipped_calls.append(template_body)
        return original(template_body)

    for mod in (engine, *bound):
        monkeypatch.setattr(mod, "_parse_template", shipped)
    cfn_yaml.apply()
    cfn_yaml.apply()  # a second time changes nothing
    parse = engine._parse_template
    assert all(mod._parse_template is parse for mod in bound) and parse is not shipped

    sam = (ROOT / "reference-stack" / "template.yaml").read_text()
    assert parse(sam)["Transform"] == "AWS::Serverless-2016-10-31"
    assert parse('{"Resources": {}}') == {"Resources": {}}  # JSON: the shipped parser, as before
    with pytest.raises(yaml.YAMLError):
        parse("Resources: [unclosed")  # the shipped parser's own error
    with pytest.raises(ValueError, match="mapping"):
        parse("- a list")
    assert shipped_calls == ['{"Resources": {}}', "Resources: [unclosed", "- a list"]
    assert cfn_yaml.NAME in [name for name, _fn in adapt.ADAPTATIONS]
