"""gc treats the stacks of one app and stage as one unit (plan side; the deletes are e2e)."""

from __future__ import annotations

from harness import setgc, tags
from harness.inventory import DELETE, KEEP, SKIP, GcDecision, GcPlan, StackRecord


def rec(name: str, app: str | None = "shop", stage: str = "old") -> StackRecord:
    t = {tags.MANAGED_BY: tags.MANAGER, tags.STAGE: stage}
    if app:
        t[tags.APP] = app
    return StackRecord(name=name, stack_id=f"id-{name}", status="CREATE_COMPLETE", tags=t)


def test_a_set_with_one_member_to_delete_deletes_every_member() -> None:
    api, data, other = rec("shop-api-old"), rec("shop-data-old"), rec("solo", app=None)
    plan = GcPlan(decisions=[GcDecision(api, DELETE, ("branch gone",))], quietly_kept=2)
    out = setgc.unite(plan, [api, data, other])
    actions = {d.record.name: (d.action, d.reason) for d in out.decisions}
    assert actions["shop-api-old"] == (DELETE, "branch gone")
    assert actions["shop-data-old"][0] == DELETE
    assert "with its set shop/old (shop-api-old: branch gone)" in actions["shop-data-old"][1]
    assert "solo" not in actions and out.quietly_kept == 1


def test_a_set_with_a_member_in_use_is_skipped_whole() -> None:
    api, data = rec("shop-api-old"), rec("shop-data-old")
    plan = GcPlan(decisions=[GcDecision(api, SKIP, ("in use: run r1",)), GcDecision(data, DELETE, ("expired 1d ago",))])
    out = setgc.unite(plan, [api, data])
    assert [(d.record.name, d.action) for d in out.decisions] == [("shop-api-old", SKIP), ("shop-data-old", SKIP)]
    assert out.decisions[1].reasons[0] == "its set shop/old is skipped (shop-api-old: in use: run r1)"


def test_stacks_of_other_stages_or_apps_are_not_joined() -> None:
    a, b = rec("shop-api-old"), rec("shop-api-new", stage="new")
    plan = GcPlan(decisions=[GcDecision(a, DELETE, ("expired",)), GcDecision(b, KEEP, ("fresh",))])
    out = setgc.unite(plan, [a, b])
    assert [(d.record.name, d.action) for d in out.decisions] == [("shop-api-new", KEEP), ("shop-api-old", DELETE)]


def test_ls_names_each_set_and_its_members() -> None:
    records = [rec("shop-data-old"), rec("shop-api-old"), rec("solo", app=None), rec("shop-api-new", stage="new")]
    assert setgc.set_lines(records) == [
        "stack set shop/old (2 stacks, one unit for gc and leases): shop-api-old, shop-data-old"
    ]
