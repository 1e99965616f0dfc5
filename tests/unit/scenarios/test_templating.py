"""Templates: typed single templates, substitution, roots, and never any code execution."""

from __future__ import annotations

from typing import Any

import pytest
from faker import Faker

from harness.scenarios.templating import (
    TemplateContext,
    TemplateError,
    check_expression,
    check_template_string,
    render,
)


@pytest.fixture
def ctx() -> TemplateContext:
    fake = Faker()
    fake.seed_instance(7)
    return TemplateContext(
        outputs={"ApiUrl": "https://x.example/dev"},
        resources={"OrdersTable": "orders-test-OrdersTable-1"},
        saved={"order_id": "abc", "count": 3, "order": {"items": [{"sku": "A"}]}, "ok": True, "none": None},
        vars={"sku": "ABC-1", "qty": 2},
        unique="t3f9a2-gw0-1a2b3c",
        env={"HOME_REGION": "eu-west-1"},
        stack={"name": "orders-test", "stage": "test", "region": "us-east-1"},
        fake=fake,
    )


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("{{ saved.count }}", 3),
        ("{{saved.count}}", 3),
        ("{{ saved.ok }}", True),
        ("{{ saved.none }}", None),
        ("{{ saved.order }}", {"items": [{"sku": "A"}]}),
        ("{{ saved.order.items[0].sku }}", "A"),
        ("{{ vars.qty }}", 2),
        ("{{ outputs.ApiUrl }}", "https://x.example/dev"),
        ("{{ resources.OrdersTable }}", "orders-test-OrdersTable-1"),
        ("{{ unique }}", "t3f9a2-gw0-1a2b3c"),
        ("{{ env.HOME_REGION }}", "eu-west-1"),
        ("{{ stack.stage }}", "test"),
    ],
)
def test_single_template_keeps_type(ctx: TemplateContext, template: str, value: Any) -> None:
    assert render(template, ctx) == value


def test_substitution_inside_strings(ctx: TemplateContext) -> None:
    assert render("/orders/{{ saved.order_id }}?n={{ saved.count }}", ctx) == "/orders/abc?n=3"
    assert render("{{ saved.ok }}-{{ saved.none }}", ctx) == "true-null"
    assert render("plain", ctx) == "plain"


def test_render_walks_structures(ctx: TemplateContext) -> None:
    value = {
        "customer_id": "{{ unique }}",
        "items": [{"sku": "{{ vars.sku }}", "qty": "{{ vars.qty }}"}],
        "{{ vars.sku }}": 1,
    }
    assert render(value, ctx) == {"customer_id": "t3f9a2-gw0-1a2b3c", "items": [{"sku": "ABC-1", "qty": 2}], "ABC-1": 1}


def test_fake_is_seeded_and_typed(ctx: TemplateContext) -> None:
    email = render("{{ fake.email }}", ctx)
    assert isinstance(email, str) and "@" in email
    other = Faker()
    other.seed_instance(7)
    assert email == other.email()
    assert isinstance(render("{{ fake.date_of_birth }}", ctx), str)  # dates become ISO text


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('x')",
        "saved.order_id.__class__.__mro__[1].__subclasses__()",
        "env['HOME']",
        "saved.count + 1",
        "vars.sku | upper",
        "lambda: 1",
        "().__class__",
    ],
)
def test_no_code_execution(ctx: TemplateContext, expr: str) -> None:
    with pytest.raises(TemplateError, match="not a dotted path"):
        render("{{ " + expr + " }}", ctx)
    with pytest.raises(TemplateError):
        check_expression(expr)


def test_dunder_attributes_are_not_reachable(ctx: TemplateContext) -> None:
    # Looks like a path, but paths only index into data: no attribute access.
    with pytest.raises(TemplateError, match="saved.order_id is a string, not a mapping"):
        render("{{ saved.order_id.__class__ }}", ctx)
    with pytest.raises(TemplateError, match="no such key; saved.order has keys: items"):
        render("{{ saved.order.__dict__ }}", ctx)
    with pytest.raises(TemplateError, match="not a Faker provider"):
        check_expression("fake.__init__")
    with pytest.raises(TemplateError, match="not a Faker provider"):
        check_expression("fake.seed_instance")


def test_unknown_root_lists_valid_roots() -> None:
    with pytest.raises(TemplateError) as info:
        check_expression("output.ApiUrl")
    assert "unknown template root 'output'" in info.value.message
    assert "did you mean 'outputs'" in (info.value.hint or "")
    assert "saved" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ outputs.Nope }}", "outputs.Nope does not exist"),
        ("{{ resources.Nope }}", "resources.Nope does not exist"),
        ("{{ saved.nope }}", "saved.nope does not exist"),
        ("{{ vars.nope }}", "vars.nope does not exist"),
        ("{{ env.NOPE_NOT_SET }}", "environment variable NOPE_NOT_SET is not set"),
        ("{{ saved.order.items[3] }}", "index out of range"),
        ("{{ fake.not_a_provider }}", "fake.not_a_provider failed"),
    ],
)
def test_runtime_lookup_errors(ctx: TemplateContext, template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("[", r"\[")):
        render(template, ctx)


def test_runtime_error_suggests_close_names(ctx: TemplateContext) -> None:
    with pytest.raises(TemplateError) as info:
        render("{{ outputs.ApiUrll }}", ctx)
    assert "did you mean 'ApiUrl'" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("{{ vars.nope }}", {"vars": ["sku"]}, "vars.nope is not defined"),
        ("{{ saved.id }}", {"saved": []}, "saved.id is used before any step saves it"),
        ("{{ unique.x }}", {}, "unique has no fields"),
        ("{{ outputs }}", {}, "needs a name after outputs"),
        ("{{ outputs.A.B }}", {}, "takes exactly one name"),
        ("{{ stack.nme }}", {}, "unknown stack field"),
        ("{{ fake.emial }}", {}, "fake.emial is not a Faker provider"),
        ("{{ fake.random_sample }}", {}, None),
        ("{{ }}", {}, "empty template"),
        ("x {{ unique", {}, "unclosed"),
        ("{{ saved.x }}", {"roots": ["env"]}, "saved cannot be used here"),
    ],
)
def test_collection_checks(text: str, kwargs: dict[str, Any], message: str | None) -> None:
    if message is None:
        check_template_string(text, **kwargs)  # a provider with only optional args is fine
        return
    with pytest.raises(TemplateError, match=message):
        check_template_string(text, **kwargs)


def test_faker_provider_needing_arguments_is_rejected() -> None:
    with pytest.raises(TemplateError, match="needs arguments"):
        check_expression("fake.enum")
