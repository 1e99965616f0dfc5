"""Prove that nothing of a stack is left: probe each resource it had, by type.

A probe answers "does this physical resource still exist?" with one cheap
read call. Types without a probe are reported as unchecked, never as clean.
On the embedded emulator, whose lists show exactly what its reads find,
several resources of one type (functions, roles, tables, log groups) are
checked by one listing instead (``LISTINGS``).

Some services are eventually consistent about deletes: a deleted SQS queue
may answer for up to 60 s, an IAM role for some seconds. On AWS, a resource
of such a type that still answers is probed again, within a bounded wait
(``settle`` seconds, through the harness's one wait loop), before it is
reported as left behind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from harness import procs
from harness.scenarios.waiting import WaitTimeout, eventually

ClientFor = Callable[[str], Any]

_GONE_CODES = {
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NotFoundException",
    "NoSuchBucket",
    "404",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NotFound",
    "NoSuchEntityException",
    "StateMachineDoesNotExist",
}


#: Probes in flight at once: each is one read call, mostly waiting on the service.
PROBE_WORKERS = 8
#: The first look's, on the embedded emulator: it runs while the session waits for the tests' late consumers,
#: asking that same emulator (one process, on this machine's cores) whether their work is done. Eight list
#: calls at once made those questions queue behind them: the session's end took about 60 ms longer than with
#: two (make integration, session finish to its end, 3 alternating rounds: 8, 2 and 1 probes at once gave
#: 628, 571 and 606 ms medians; this first look alone at 2 against 8, 566 against 629 ms).
FIRST_LOOK_WORKERS_LOCAL = 2


def _exists(call: Callable[[], object]) -> bool:
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _GONE_CODES:
            return False
        raise
    return True


def _bucket(c: Any, pid: str) -> bool:
    return _exists(lambda: c.head_bucket(Bucket=pid))


def _layer(c: Any, pid: str) -> bool:
    # Physical id is the layer version ARN.
    name, _, version = pid.rpartition(":")
    return _exists(lambda: c.get_layer_version(LayerName=name, VersionNumber=int(version)))


def _function_version(c: Any, pid: str) -> bool:
    # arn:aws:lambda:region:account:function:name:version
    name, _, version = pid.rpartition(":")
    return _exists(lambda: c.get_function(FunctionName=name, Qualifier=version))


def _stack(c: Any, pid: str) -> bool:
    # A nested stack: by id, describe_stacks still answers after the delete, as DELETE_COMPLETE.
    try:
        status = c.describe_stacks(StackName=pid)["Stacks"][0]["StackStatus"]
    except botocore.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return bool(status != "DELETE_COMPLETE")


def _rule(c: Any, pid: str) -> bool:
    # CloudFormation names a rule of a custom bus "bus|rule"; an ARN ends in rule/[bus/]name.
    if pid.startswith("arn:"):
        bus, _, name = pid.split(":", 5)[5].removeprefix("rule/").rpartition("/")
    else:
        bus, _, name = pid.rpartition("|")
    if bus or pid.startswith("arn:"):
        return _exists(lambda: c.describe_rule(Name=name, EventBusName=bus or "default"))
    # A plain name is a rule of the default bus on AWS; the emulator gives a custom bus's rule its plain
    # name too (MiniStack 1.5.33), so a rule not on the default bus is looked for on every bus.
    if _exists(lambda: c.describe_rule(Name=name)):
        return True
    buses = _listed(c.list_event_buses, "EventBuses", "Name", "NextToken", "NextToken") - {"default"}
    return any(
        name in _listed(c.list_rules, "Rules", "Name", "NextToken", "NextToken", NamePrefix=name, EventBusName=b)
        for b in sorted(buses)
    )


PROBES: dict[str, tuple[str, Callable[[Any, str], bool]]] = {
    "AWS::Lambda::Function": ("lambda", lambda c, p: _exists(lambda: c.get_function(FunctionName=p))),
    "AWS::DynamoDB::Table": ("dynamodb", lambda c, p: _exists(lambda: c.describe_table(TableName=p))),
    "AWS::SQS::Queue": ("sqs", lambda c, p: _exists(lambda: c.get_queue_attributes(QueueUrl=p))),
    "AWS::SNS::Topic": ("sns", lambda c, p: _exists(lambda: c.get_topic_attributes(TopicArn=p))),
    "AWS::ApiGateway::RestApi": ("apigateway", lambda c, p: _exists(lambda: c.get_rest_api(restApiId=p))),
    "AWS::IAM::Role": ("iam", lambda c, p: _exists(lambda: c.get_role(RoleName=p))),
    "AWS::S3::Bucket": ("s3", _bucket),
    "AWS::Lambda::LayerVersion": ("lambda", _layer),
    "AWS::Lambda::Version": ("lambda", _function_version),
    "AWS::Logs::LogGroup": (
        "logs",
        lambda c, p: any(g["logGroupName"] == p for g in c.describe_log_groups(logGroupNamePrefix=p)["logGroups"]),
    ),
    "AWS::CloudFormation::Stack": ("cloudformation", _stack),
    "AWS::Events::EventBus": ("events", lambda c, p: _exists(lambda: c.describe_event_bus(Name=p))),
    "AWS::Events::Rule": ("events", _rule),
    "AWS::StepFunctions::StateMachine": (
        "stepfunctions",
        lambda c, p: _exists(lambda: c.describe_state_machine(stateMachineArn=p)),
    ),
    "AWS::Lambda::EventSourceMapping": (
        "lambda",
        lambda c, p: _exists(lambda: c.get_event_source_mapping(UUID=p)),
    ),
    # (A pool's clients, ``AWS::Cognito::UserPoolClient``, are read by pool and client id; their physical id
    # is the client id alone: not checkable. They go with their pool.)
    "AWS::Cognito::UserPool": ("cognito-idp", lambda c, p: _exists(lambda: c.describe_user_pool(UserPoolId=p))),
}


def _listed(
    call: Callable[..., Any], items: str, field: str | None, token_in: str, token_out: str, **kw: Any
) -> set[str]:
    """Every ``field`` of ``items`` over all pages of a list call (the item itself when ``field`` is None)."""
    found: set[str] = set()
    token = None
    while True:
        page = call(**kw, **({token_in: token} if token else {}))
        found.update(item[field] if field else item for item in page.get(items) or ())
        token = page.get(token_out)
        if not token:
            return found


def _listed_functions(c: Any, ids: list[str]) -> set[str]:
    return _listed(c.list_functions, "Functions", "FunctionName", "Marker", "NextMarker")


def _listed_roles(c: Any, ids: list[str]) -> set[str]:
    return _listed(c.list_roles, "Roles", "RoleName", "Marker", "Marker")


def _listed_tables(c: Any, ids: list[str]) -> set[str]:
    return _listed(c.list_tables, "TableNames", None, "ExclusiveStartTableName", "LastEvaluatedTableName")


def _listed_log_groups(c: Any, ids: list[str]) -> set[str]:
    prefix = os.path.commonprefix(ids)
    return _listed(
        c.describe_log_groups,
        "logGroups",
        "logGroupName",
        "nextToken",
        "nextToken",
        **({"logGroupNamePrefix": prefix} if prefix else {}),
    )


#: Types whose resources one listing (every page) checks at once, where a list shows exactly what the
#: per-resource read finds: on the embedded emulator both read the same store, and a deleted resource
#: leaves it at once. On AWS lists are eventually consistent, so each resource is read on its own there.
#: Each entry: the client, the listing (given the physical ids it is asked about), and which physical ids
#: it can answer for (plain names; an ARN or a qualified name is read on its own).
LISTINGS: dict[str, tuple[str, Callable[[Any, list[str]], set[str]], Callable[[str], bool]]] = {
    "AWS::Lambda::Function": ("lambda", _listed_functions, lambda p: ":" not in p),
    "AWS::IAM::Role": ("iam", _listed_roles, lambda p: ":" not in p and "/" not in p),
    "AWS::DynamoDB::Table": ("dynamodb", _listed_tables, lambda p: ":" not in p and "/" not in p),
    "AWS::Logs::LogGroup": ("logs", _listed_log_groups, lambda p: True),
}


def services_for(types: dict[str, str]) -> list[str]:
    """The clients a probe of resources of these types calls, in first-use order."""
    return list(dict.fromkeys(PROBES[t][0] for t in types.values() if t in PROBES))


#: Types whose deletes AWS documents as eventually consistent.
EVENTUAL = {"AWS::SQS::Queue", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}
#: How long such a resource may still answer after its delete on AWS (SQS documents up to 60 s).
SETTLE_SECONDS = 75.0


@dataclass(frozen=True)
class LeakReport:
    leftovers: list[str]
    checked: int
    unchecked: list[str]

    @property
    def clean(self) -> bool:
        return not self.leftovers


def probe(
    client_for: ClientFor,
    resources: dict[str, str],
    types: dict[str, str],
    *,
    settle: float = 0.0,
    listing: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> LeakReport:
    """Check every resource the stack had; report all leftovers at once.

    ``settle``: how long an eventually consistent resource (``EVENTUAL``) that
    still answers is probed again before it counts as left (0: no wait).
    ``listing``: the target's lists show exactly what its reads find (the
    embedded emulator): several resources of a type in ``LISTINGS`` are
    checked by one listing instead of one read each.
    """
    first = _probe_all(client_for, resources, types, listing=listing)
    lingering = {k: v for k, v in first.lingering.items() if types.get(k) in EVENTUAL}
    if not lingering or settle <= 0:
        return first.report()

    def all_gone() -> None:
        again = _probe_all(client_for, lingering, types, listing=listing)
        lingering.clear()
        lingering.update(again.lingering)
        assert not lingering, f"still answering: {', '.join(sorted(lingering))}"

    try:
        eventually(all_gone, within=settle, interval=1.0, backoff=1.5, max_interval=10.0, clock=clock, sleep=sleep)
    except WaitTimeout:
        pass
    for logical in list(first.lingering):
        if types.get(logical) in EVENTUAL and logical not in lingering:
            del first.lingering[logical]
    return first.report()


def not_seen(
    client_for: ClientFor,
    resources: dict[str, str],
    types: dict[str, str],
    *,
    listing: bool = False,
    workers: int = PROBE_WORKERS,
) -> set[str]:
    """Before the delete: the logical ids of ``resources`` whose probe does not see them (the others answered
    that they exist, or could not be read, which the probe after the delete reports itself).

    A probe that does not see a resource while it exists would find it "gone" after the delete whatever
    happened to it: the teardown counts such a resource as unproven, never as verified gone. Run while the
    session waits anyway (its trace collection), this first look also pays each probe's first call (the
    service's and the client's first use of the operation) before the teardown rather than in it.
    """
    return _probe_all(client_for, resources, types, listing=listing, workers=workers).gone


@dataclass
class _Pass:
    lingering: dict[str, str]  # logical -> physical, still answering
    errors: list[str]
    checked: int
    unchecked: list[str]
    types: dict[str, str]
    gone: set[str]  # logical ids whose check answered that the resource does not exist

    def report(self) -> LeakReport:
        left = [f"{k} ({self.types.get(k, '?')}) {v}" for k, v in sorted(self.lingering.items())]
        return LeakReport(sorted([*left, *self.errors]), self.checked, self.unchecked)


#: One check: the resources it answers for (logical -> physical), their type, its client's service, and
#: the call, which returns the physical ids among them that still exist.
_Check = tuple[dict[str, str], str, str, Callable[[Any], set[str]]]


def _checks(resources: dict[str, str], types: dict[str, str], *, listing: bool) -> tuple[list[_Check], list[str]]:
    """The checks that cover every probed resource (in the resources' sorted order), and the unprobed ones."""
    unchecked: list[str] = []
    listed: dict[str, dict[str, str]] = {}
    checks: list[_Check] = []
    for logical, physical in sorted(resources.items()):
        rtype = types.get(logical, "?")
        entry = PROBES.get(rtype)
        if entry is None:
            unchecked.append(f"{logical} ({rtype})")
            continue
        if listing and rtype in LISTINGS and LISTINGS[rtype][2](physical):
            listed.setdefault(rtype, {})[logical] = physical
            continue
        checks.append(({logical: physical}, rtype, entry[0], _read(entry[1], physical)))
    for rtype, group in listed.items():
        if len(group) == 1:  # one read is as cheap as a listing
            [(logical, physical)] = group.items()
            service, fn = PROBES[rtype]
            checks.append((group, rtype, service, _read(fn, physical)))
        else:
            service, lister, _ = LISTINGS[rtype]
            checks.append((group, rtype, service, _listing(lister, sorted(group.values()))))
    return checks, unchecked


def _read(fn: Callable[[Any, str], bool], physical: str) -> Callable[[Any], set[str]]:
    return lambda client: {physical} if fn(client, physical) else set()


def _listing(lister: Callable[[Any, list[str]], set[str]], ids: list[str]) -> Callable[[Any], set[str]]:
    return lambda client: set(ids) & lister(client, ids)


def _probe_all(
    client_for: ClientFor,
    resources: dict[str, str],
    types: dict[str, str],
    *,
    listing: bool = False,
    workers: int = PROBE_WORKERS,
) -> _Pass:
    """One pass over ``resources``, the checks run side by side; results in the resources' sorted order."""
    checks, unchecked = _checks(resources, types, listing=listing)
    # Clients are made here, one at a time (making them is not thread-safe); calls on them are.
    clients = {service: client_for(service) for service in dict.fromkeys(check[2] for check in checks)}

    def one(check: _Check) -> set[str] | BaseException:
        try:
            return check[3](clients[check[2]])
        except botocore.exceptions.ClientError as exc:
            return exc

    with ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(checks))),
        thread_name_prefix="harness-leak-probe",
        initializer=procs.block_main_signals,
    ) as pool:
        answers = list(pool.map(one, checks))
    lingering: dict[str, str] = {}
    errors: list[str] = []
    gone: set[str] = set()
    for (group, rtype, _service, _call), answer in zip(checks, answers, strict=True):
        for logical, physical in group.items():
            if isinstance(answer, BaseException):
                errors.append(f"{logical} ({rtype}) {physical}: could not be checked: {answer}")
            elif physical in answer:
                lingering[logical] = physical
            else:
                gone.add(logical)
    checked = sum(len(check[0]) for check in checks)
    return _Pass(dict(sorted(lingering.items())), sorted(errors), checked, unchecked, types, gone)


def recreated_log_groups(
    client_for: ClientFor, report: LeakReport, resources: dict[str, str], types: dict[str, str]
) -> list[str]:
    """Delete the stack's function log groups that came back after the delete; returns their names.

    A function still running when its stack is deleted writes its last log
    lines after the log group resource went, and Lambda creates the group again
    (on AWS as on the emulator). Such a group belongs to a function of this
    stack that is now gone, so it is this run's to remove; any other leftover
    is only reported.
    """
    functions = {resources[k] for k, t in types.items() if t == "AWS::Lambda::Function" and k in resources}
    groups = {
        physical
        for logical, physical in resources.items()
        if types.get(logical) == "AWS::Logs::LogGroup" and physical.removeprefix("/aws/lambda/") in functions
    }
    deleted = []
    for line in report.leftovers:
        name = line.rsplit(" ", 1)[-1]
        if "(AWS::Logs::LogGroup)" in line and name in groups:
            try:
                client_for("logs").delete_log_group(logGroupName=name)
                deleted.append(name)
            except botocore.exceptions.ClientError:
                continue
    return deleted
