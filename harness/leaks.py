"""Prove that nothing of a stack is left: probe each resource it had, by type.

A probe answers "does this physical resource still exist?" with one cheap
read call. Types without a probe are reported as unchecked, never as clean.

Some services are eventually consistent about deletes: a deleted SQS queue
may answer for up to 60 s, an IAM role for some seconds. On AWS, a resource
of such a type that still answers is probed again, within a bounded wait
(``settle`` seconds, through the harness's one wait loop), before it is
reported as left behind.
"""

from __future__ import annotations

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
    return _exists(lambda: c.describe_rule(Name=name, EventBusName=bus or "default"))


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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> LeakReport:
    """Check every resource the stack had; report all leftovers at once.

    ``settle``: how long an eventually consistent resource (``EVENTUAL``) that
    still answers is probed again before it counts as left (0: no wait).
    """
    first = _probe_all(client_for, resources, types)
    lingering = {k: v for k, v in first.lingering.items() if types.get(k) in EVENTUAL}
    if not lingering or settle <= 0:
        return first.report()

    def all_gone() -> None:
        again = _probe_all(client_for, lingering, types)
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


@dataclass
class _Pass:
    lingering: dict[str, str]  # logical -> physical, still answering
    errors: list[str]
    checked: int
    unchecked: list[str]
    types: dict[str, str]

    def report(self) -> LeakReport:
        left = [f"{k} ({self.types.get(k, '?')}) {v}" for k, v in sorted(self.lingering.items())]
        return LeakReport(sorted([*left, *self.errors]), self.checked, self.unchecked)


#: Probes in flight at once: each is one read call, mostly waiting on the service.
PROBE_WORKERS = 8


def _probe_all(client_for: ClientFor, resources: dict[str, str], types: dict[str, str]) -> _Pass:
    """One pass over ``resources``, the probes run side by side; results in the resources' sorted order."""
    unchecked: list[str] = []
    todo: list[tuple[str, str, str, str, Callable[[Any, str], bool]]] = []
    for logical, physical in sorted(resources.items()):
        rtype = types.get(logical, "?")
        entry = PROBES.get(rtype)
        if entry is None:
            unchecked.append(f"{logical} ({rtype})")
        else:
            todo.append((logical, physical, rtype, *entry))
    # Clients are made here, one at a time (making them is not thread-safe); calls on them are.
    clients = {service: client_for(service) for service in dict.fromkeys(item[3] for item in todo)}

    def one(item: tuple[str, str, str, str, Callable[[Any, str], bool]]) -> bool | str:
        logical, physical, rtype, service, fn = item
        try:
            return bool(fn(clients[service], physical))
        except botocore.exceptions.ClientError as exc:
            return f"{logical} ({rtype}) {physical}: could not be checked: {exc}"

    with ThreadPoolExecutor(
        max_workers=max(1, min(PROBE_WORKERS, len(todo))),
        thread_name_prefix="harness-leak-probe",
        initializer=procs.block_main_signals,
    ) as pool:
        answers = list(pool.map(one, todo))
    lingering = {item[0]: item[1] for item, answer in zip(todo, answers, strict=True) if answer is True}
    errors = [answer for answer in answers if isinstance(answer, str)]
    return _Pass(lingering, errors, len(todo), unchecked, types)


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
