"""Find the resources a deploy made by the harness's tags, without any CloudFormation stack.

The Resource Groups Tagging API (``GetResources`` with tag filters) lists
most tagged resources in one paginated call. Where it is blind, per-service
listings with their tags fill in:

* IAM roles: global, never in the tagging API (AWS says so too);
* API Gateway REST APIs and CloudWatch log groups: AWS lists both, MiniStack
  1.5.33 lists neither although they carry the tags.

Results are deduplicated by ARN, so on AWS the second listing only costs a
call. The event steps' listeners carry the stack's tags too; they are left out
(their own sweep removes them). Every finder takes ``client_for(service)``, so tests hand in moto or
the emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import tags
from harness.events.listeners import LISTENER_OF

ClientFor = Callable[[str], Any]


@dataclass(frozen=True)
class TaggedResource:
    """One resource carrying the harness's tags."""

    arn: str
    tags: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def service(self) -> str:
        return self.arn.split(":")[2] if self.arn.count(":") >= 5 else "?"

    @property
    def kind(self) -> str:
        """``service:type``, e.g. ``lambda:function``, ``sqs`` (a queue), ``iam:role``, ``apigateway:restapis``."""
        parts = self.arn.split(":", 5)
        if len(parts) < 6:
            return "?"
        rest = parts[5].lstrip("/")
        sep = min((i for i in (rest.find("/"), rest.find(":")) if i >= 0), default=-1)
        sub = rest[:sep] if sep >= 0 else ""
        return f"{parts[2]}:{sub}" if sub else parts[2]

    @property
    def stage(self) -> str | None:
        return self.tags.get(tags.STAGE)

    @property
    def app(self) -> str | None:
        return self.tags.get(tags.APP)


def _matches(found: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(found.get(k) == v for k, v in wanted.items())


def _tag_filters(wanted: Mapping[str, str]) -> list[dict[str, Any]]:
    return [{"Key": k, "Values": [v]} for k, v in wanted.items()]


def by_tagging_api(client_for: ClientFor, wanted: Mapping[str, str]) -> list[TaggedResource]:
    """What ``GetResources`` lists with every wanted tag (all pages)."""
    api = client_for("resourcegroupstaggingapi")
    found = []
    for page in api.get_paginator("get_resources").paginate(TagFilters=_tag_filters(wanted)):
        for item in page.get("ResourceTagMappingList") or []:
            t = {x["Key"]: x["Value"] for x in item.get("Tags") or []}
            if _matches(t, wanted):  # the filter already did it; an emulator's might not
                found.append(TaggedResource(item["ResourceARN"], t))
    return found


def iam_roles(client_for: ClientFor, wanted: Mapping[str, str]) -> list[TaggedResource]:
    """IAM roles with every wanted tag (``ListRoles`` omits tags on AWS: ``ListRoleTags`` per role)."""
    iam = client_for("iam")
    found = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page.get("Roles") or []:
            if role.get("Path", "/").startswith("/aws-service-role/"):
                continue  # AWS's own service-linked roles carry no tags of ours
            t = {x["Key"]: x["Value"] for x in role.get("Tags") or []}
            if not _matches(t, wanted):
                t = {x["Key"]: x["Value"] for x in iam.list_role_tags(RoleName=role["RoleName"]).get("Tags") or []}
            if _matches(t, wanted):
                found.append(TaggedResource(role["Arn"], t))
    return found


def rest_apis(client_for: ClientFor, wanted: Mapping[str, str], region: str, partition: str) -> list[TaggedResource]:
    """API Gateway REST APIs with every wanted tag (``GetRestApis`` carries each API's tags)."""
    gw = client_for("apigateway")
    found = []
    for page in gw.get_paginator("get_rest_apis").paginate():
        for api in page.get("items") or []:
            t = dict(api.get("tags") or {})
            if _matches(t, wanted):
                found.append(TaggedResource(f"arn:{partition}:apigateway:{region}::/restapis/{api['id']}", t))
    return found


def log_groups(client_for: ClientFor, wanted: Mapping[str, str]) -> list[TaggedResource]:
    """CloudWatch log groups with every wanted tag (``ListTagsForResource`` per group)."""
    logs = client_for("logs")
    found = []
    for page in logs.get_paginator("describe_log_groups").paginate():
        for group in page.get("logGroups") or []:
            arn = group["arn"].removesuffix(":*")
            t = dict(logs.list_tags_for_resource(resourceArn=arn).get("tags") or {})
            if _matches(t, wanted):
                found.append(TaggedResource(arn, t))
    return found


def wanted_tags(*, stage: str | None = None, app: str | None = None) -> dict[str, str]:
    """The tags that make a resource this app's and stage's (any managed resource when both are None)."""
    return {
        tags.MANAGED_BY: tags.MANAGER,
        **({tags.APP: tags.safe_value(app)} if app else {}),
        **({tags.STAGE: stage} if stage else {}),
    }


def find(
    client_for: ClientFor, wanted: Mapping[str, str], *, region: str, partition: str = "aws", on_aws: bool = False
) -> list[TaggedResource]:
    """Every resource with the wanted tags: the tagging API, IAM roles, and (off AWS) REST APIs and log groups.

    On AWS the tagging API lists REST APIs and log groups itself, so their
    per-service listings (a call per log group) are left out there.
    """
    listings: Iterable[list[TaggedResource]] = (
        by_tagging_api(client_for, wanted),
        iam_roles(client_for, wanted),
        *(() if on_aws else (rest_apis(client_for, wanted, region, partition), log_groups(client_for, wanted))),
    )
    by_arn: dict[str, TaggedResource] = {}
    for listing in listings:
        for r in listing:
            if LISTENER_OF not in r.tags:  # the event steps' listeners: theirs to remove (harness.events.sweep)
                by_arn.setdefault(r.arn, r)
    return sorted(by_arn.values(), key=lambda r: r.arn)
