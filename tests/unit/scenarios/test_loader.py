"""Loading valid files into the model, and the shape errors the loader reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import ScenarioError
from harness.scenarios.loader import load_file, load_text
from harness.scenarios.matchers import Absent, Between, Compare, Exact, Regex
from tests.unit.examples import examples

HERE = Path(__file__).parent


def test_valid_example_file() -> None:
    doc = load_file(HERE / "valid" / "orders.yaml", display_path="valid/orders.yaml")
    first, second = doc.scenarios
    assert first.name == "create then read an order" and first.line == 4
    assert [m.name for m in first.marks] == ["smoke", "xfail"]
    assert first.marks[1].kwargs == {"reason": "demo", "strict": False}
    assert first.vars == {"sku": "ABC-1"}
    create, read, audited = first.steps
    assert (create.index, create.name, create.action, create.line) == (1, "create", "http", 7)
    assert isinstance(create.expect["body"]["order_id"], Regex)
    assert isinstance(create.expect["body"]["total_qty"], Compare)
    assert [(s.name, s.path) for s in create.saves] == [("order_id", ("body", "order_id"))]
    assert read.args["path"] == "/orders/{{ saved.order_id }}"
    assert audited.action == "expect_item" and audited.has_expect

    assert set(second.vars) == {"sku", "customer", "region"}
    names = [s.name for s in second.steps]
    assert names[:4] == [
        "put OrdersTable",
        "get OrdersTable",
        "query OrdersTable index ByCustomer",
        "delete OrdersTable",
    ]
    assert names[-2:] == ["wait 0.5s", "wait until get"]
    get = second.steps[1]
    assert isinstance(get.expect["item"]["total"], Between)
    assert isinstance(get.expect["item"]["deleted"], Absent)
    assert isinstance(second.steps[6].expect, Exact)


def test_minimal_file_and_defaults() -> None:
    doc = load_text("scenarios:\n  - name: health\n    steps:\n      - http: {api: ApiUrl, path: /health}\n")
    [scenario] = doc.scenarios
    [step] = scenario.steps
    assert step.name == "http GET /health" and not step.has_expect and step.saves == ()
    assert scenario.marks == () and scenario.vars == {}


def test_anchors_and_merge_keys_work() -> None:
    doc = load_text(
        """
x-common: &auth {api: ApiUrl, headers: {authorization: Bearer t}}
scenarios:
  - name: a
    steps:
      - http: {<<: *auth, path: /a}
""".replace("x-common: &auth", "vars:\n  auth: &auth")
    )
    step = doc.scenarios[0].steps[0]
    assert step.args["headers"] == {"authorization": "Bearer t"} and step.args["path"] == "/a"


def test_scenario_vars_override_file_vars() -> None:
    doc = load_text(
        "vars: {a: 1, b: 2}\nscenarios:\n  - name: s\n    vars: {b: 3}\n    steps:\n      - wait: {seconds: 0}\n"
    )
    assert dict(doc.scenarios[0].vars) == {"a": 1, "b": 3}


def test_dates_stay_text() -> None:
    doc = load_text("scenarios:\n  - name: s\n    steps:\n      - put: {table: T, item: {day: 2024-01-01}}\n")
    assert doc.scenarios[0].steps[0].args["item"]["day"] == "2024-01-01"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the file is empty"),
        ("- a\n- b\n", 1, "the top level must be a mapping"),
        ("scenarios: []\n", 1, "`scenarios` is empty"),
        ("scenario: []\n", 1, "unknown key 'scenario'"),
        ("scenarios:\n  - name: a\n    steps:\n      - get: {table: T}\n", 4, "missing required key 'key'"),
        ("scenarios:\n  - name: a\n    steps:\n      - wait: {seconds: -1}\n", 4, "must be >= 0"),
        ("scenarios:\n  - name: a\n    steps:\n      - http: {url: x, path: /y}\n", 4, "`path` is only for `api`"),
        ("scenarios:\n  - name: a\n    steps:\n      - http: {api: A, json: 1, body: x}\n", 4, "not both"),
        (
            "scenarios:\n  - name: a\n    steps:\n      - put: {table: T, item: {a: !any }}\n",
            4,
            "only works inside `expect`",
        ),
        (
            "scenarios:\n  - name: a\n    steps:\n      - wait: {until: {get: {table: T, key: {a: 1}}}}\n",
            4,
            "needs an `expect`",
        ),
        (
            "scenarios:\n  - name: a\n    steps:\n      - wait: {until: {put: {table: T, item: {}}}}\n"
            "        expect: {}\n",
            4,
            "wait.until cannot use 'put'",
        ),
        (
            "scenarios:\n  - name: a\n    steps:\n      - put: {table: T, item: {}}\n        expect: {a: 1}\n",
            5,
            "observes nothing",
        ),
        (
            "scenarios:\n  - name: a\n    steps:\n      - query: {table: T, key_condition: {a: {gt: 1}}}\n",
            4,
            "needs an equality",
        ),
        (
            'scenarios:\n  - name: a\n    marks: ["not a mark"]\n    steps: [{wait: {seconds: 1}}]\n',
            3,
            "invalid mark name",
        ),
        (
            "scenarios:\n  - name: a\n    steps:\n      - http: {api: A}\n        save: {x: body..y}\n",
            5,
            "malformed path",
        ),
        ("scenarios:\n  - name: 'a::b'\n    steps: [{wait: {seconds: 1}}]\n", 2, "contains '::'"),
        (
            "vars: {x: '{{ saved.y }}'}\nscenarios:\n  - name: a\n    steps: [{wait: {seconds: 1}}]\n",
            1,
            "saved cannot be used here",
        ),
        ("\ufeffscenarios:\n  - name: a\n    steps:\n      - htp: {}\n", 4, "did you mean 'http'"),
    ],
)
def test_shape_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "s.yaml")
    err = info.value
    assert err.line == line, str(err)
    assert message in str(err)
    assert err.hint


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_file(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"scenarios:\n  - name: caf\xe9\n")
    with pytest.raises(ScenarioError) as info:
        load_file(bad)
    assert info.value.line == 2 and "UTF-8" in str(info.value)


# -- robustness: no input may escape as anything but a ScenarioError ---------------

_KEYS = [
    "scenarios",
    "vars",
    "name",
    "steps",
    "marks",
    "expect",
    "save",
    "http",
    "get",
    "put",
    "query",
    "delete",
    "invoke",
    "send",
    "receive",
    "wait",
    "expect_item",
    "table",
    "key",
    "item",
    "api",
    "path",
    "method",
    "json",
    "body",
    "until",
    "seconds",
    "within",
    "key_condition",
    "queue",
    "max",
    "function",
    "status",
    "order_id",
    "{{ saved.x }}",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.sampled_from(_KEYS),
    st.sampled_from(["{{ unique }}", "{{ vars.a }}", "{{ saved.order_id }}", "{{ nope.x }}", "{{", "GET", "x.y"]),
    st.text(max_size=5),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4))
def test_random_structures_load_or_raise_scenario_error(data: dict) -> None:
    text = yaml.safe_dump(data)
    try:
        load_text(text, "fuzz.yaml")
    except ScenarioError:
        pass


_TAG_SNIPPETS = st.sampled_from(
    [
        "!re",
        "!gt",
        "!between",
        "!absent",
        "!any",
        "!len",
        "!contains",
        "!exact",
        "!nope",
        "!!binary",
        "&a",
        "*a",
        "<<:",
        "{",
        "}",
        "[",
        "]",
        ":",
        "-",
        "\n",
        "  ",
        "'",
        '"',
        "#",
        "---",
        "\t",
        "scenarios:",
        "steps:",
        "name: x",
        "- http: {api: A}",
        "expect:",
        "1",
        "abc",
    ]
)


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(_TAG_SNIPPETS, max_size=30).map(" ".join) | st.text(max_size=60))
def test_random_text_loads_or_raises_scenario_error(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml")
    except ScenarioError:
        pass


@settings(max_examples=examples(200), deadline=None)
@given(
    st.sampled_from(["status", "body", "headers"]),
    st.sampled_from(["!re", "!gt", "!ge", "!lt", "!le", "!between", "!len", "!contains", "!exact", "!absent", "!any"]),
    st.sampled_from(["", "1", "-1", "abc", "'('", "[1, 2]", "[2, 1]", "{a: 1}", "'{{ saved.q }}'", "1.5", "[1]"]),
)
def test_every_tag_with_every_argument(key: str, tag: str, arg: str) -> None:
    text = f"scenarios:\n  - name: s\n    steps:\n      - http: {{api: A}}\n        expect:\n          {key}: {tag} {arg}\n"
    try:
        load_text(text, "fuzz.yaml")
    except ScenarioError as exc:
        assert exc.line is not None and exc.hint
