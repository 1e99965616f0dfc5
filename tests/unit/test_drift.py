"""Drift detection against documented CloudFormation response shapes."""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from harness.drift import detect


class FakeCfn:
    def __init__(self, statuses: list[str], drifts: list[dict[str, Any]]) -> None:
        self.statuses = statuses
        self.drifts = drifts

    def detect_stack_drift(self, StackName: str) -> dict[str, str]:  # noqa: N803
        return {"StackDriftDetectionId": "d-1"}

    def describe_stack_drift_detection_status(self, StackDriftDetectionId: str) -> dict[str, Any]:  # noqa: N803
        s = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        out = {"DetectionStatus": s, "StackDriftStatus": "DRIFTED" if self.drifts else "IN_SYNC"}
        return out

    def describe_stack_resource_drifts(self, **kw: Any) -> dict[str, Any]:
        assert kw["StackResourceDriftStatusFilters"] == ["MODIFIED", "DELETED"]
        if kw.get("NextToken") is None and len(self.drifts) > 1:
            return {"StackResourceDrifts": self.drifts[:1], "NextToken": "t"}
        return {"StackResourceDrifts": self.drifts[1:] if kw.get("NextToken") else self.drifts}


def test_drifted_resources_are_listed_with_their_changed_properties() -> None:
    cfn = FakeCfn(
        ["DETECTION_IN_PROGRESS", "DETECTION_COMPLETE"],
        [
            {
                "LogicalResourceId": "Orders",
                "ResourceType": "AWS::DynamoDB::Table",
                "StackResourceDriftStatus": "MODIFIED",
                "PropertyDifferences": [{"PropertyPath": "/BillingMode"}],
            }
        ],
    )
    summary, lines = detect(cfn, "s", sleep=lambda _: None)
    assert summary == "drift: DRIFTED"
    assert lines == ["Orders (AWS::DynamoDB::Table): MODIFIED [/BillingMode]"]


def test_in_sync_and_deadline() -> None:
    assert detect(FakeCfn(["DETECTION_COMPLETE"], []), "s") == ("drift: IN_SYNC", [])
    t = iter(range(100))
    summary, lines = detect(
        FakeCfn(["DETECTION_IN_PROGRESS"], []), "s", within=3, sleep=lambda _: None, clock=lambda: next(t)
    )
    assert "still running after 3s" in summary and lines == []


def test_unsupported_target_is_reported_not_raised() -> None:
    class NoDrift:
        def detect_stack_drift(self, StackName: str) -> None:  # noqa: N803
            raise botocore.exceptions.ClientError({"Error": {"Code": "InvalidAction"}}, "DetectStackDrift")

    summary, lines = detect(NoDrift(), "s")
    assert "not available" in summary and lines == []
