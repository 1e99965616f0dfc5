"""The deployed branch stack as tests see it.

``StackInfo`` is plain JSON-able data: the controller builds it after the
deploy and sends it to pytest-xdist workers through ``workerinput``. ``Stack``
wraps it with boto3 clients bound to the target.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NotRequired, TypedDict

import boto3
from botocore.config import Config

from harness import boto_sessions, environment
from harness.errors import OutputConflict


class TargetInfo(TypedDict):
    """How to reach the target; enough for any process to build clients."""

    kind: str  # local | aws | endpoint
    region: str
    endpoint_url: str | None
    # Credentials are only carried for emulator targets (fixed dummy keys);
    # on ``aws`` every process uses boto3's default chain / profile.
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    profile: str | None


class StackInfo(TypedDict):
    name: str
    stage: str
    branch: str
    outputs: dict[str, str]
    # logical id -> physical id
    resources: dict[str, str]
    # logical id -> resource type
    resource_types: dict[str, str]
    tags: dict[str, str]
    target: TargetInfo
    # An app of several stacks (CDK ``deploy --all``): every member, in deploy
    # order, its outputs, and the output keys more than one member defines
    # (left out of ``outputs``). Absent for a one-stack app.
    stacks: NotRequired[list[str]]
    stack_outputs: NotRequired[dict[str, dict[str, str]]]
    shared_outputs: NotRequired[dict[str, list[str]]]
    # A deploy without CloudFormation (deploy-kind tagged): "tagged", resources keyed by name; and the
    # outputs whose values are never printed, logged or written (Terraform's sensitive outputs).
    kind: NotRequired[str]
    sensitive_outputs: NotRequired[list[str]]


class Outputs(dict[str, str]):
    """The merged outputs of a set: a key several stacks define raises an error naming them."""

    def __init__(self, merged: dict[str, str], shared: dict[str, list[str]]) -> None:
        super().__init__(merged)
        self.shared = shared

    def __missing__(self, key: str) -> str:
        if key in self.shared:
            raise output_conflict(key, self.shared[key])
        raise KeyError(key)


def output_conflict(key: str, stacks: list[str]) -> OutputConflict:
    """A key several stacks of the set define: name them, and how to pick one."""
    return OutputConflict(
        f"output {key!r} is defined by {len(stacks)} stacks of the set: {', '.join(stacks)}",
        hint=f'pick one: stack.output("{key}", stack="{stacks[0]}"); or give the outputs distinct keys',
    )


# Every client the harness hands out retries with botocore's standard mode.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=60)


def boto3_session(target: TargetInfo) -> boto3.Session:
    """A boto3 session for the target: dummy keys locally, default chain on AWS."""
    if target["access_key_id"]:
        return boto_sessions.session(
            aws_access_key_id=target["access_key_id"],
            aws_secret_access_key=target["secret_access_key"],
            aws_session_token=target["session_token"],
            region_name=target["region"],
        )
    return boto_sessions.session(profile_name=target["profile"], region_name=target["region"])


def resolve_name(stack: Stack, ref: str) -> str:
    """A logical id -> its physical id, an output name -> its value, anything else as is.

    Reads only ``stack.resources`` and ``stack.outputs``.
    """
    if ref in stack.resources:
        return stack.resources[ref]
    return stack.outputs.get(ref, ref)


def topic_arn_named(stack: Stack, name: str) -> str | None:
    """The ARN of the SNS topic called ``name`` (``ListTopics``, all pages); ``None`` when there is none."""
    pages = stack.client("sns").get_paginator("list_topics").paginate()
    found = [t["TopicArn"] for p in pages for t in p.get("Topics", []) if t["TopicArn"].endswith(f":{name}")]
    return found[0] if found else None


def table_name_of(value: str) -> str:
    """A DynamoDB table's name from its ARN (``arn:aws:dynamodb:region:acct:table/Name``); a name as is."""
    if value.startswith("arn:") and ":table/" in value:
        return value.split(":table/", 1)[1].split("/", 1)[0]
    return value


def invoke_function(
    lambda_client: Any,
    name: str,
    payload: bytes | None,
    *,
    invocation_type: str = "RequestResponse",
    qualifier: str | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Invoke a Lambda function: (the response, its payload's bytes, empty when there is none).

    The Python ``invoke`` fixture and the scenario step ``invoke`` both call it; each decodes
    the bytes its own way. ``payload`` None sends none (the function gets ``{}`` from AWS).
    """
    params: dict[str, Any] = {"FunctionName": name, "InvocationType": invocation_type}
    if payload is not None:
        params["Payload"] = payload
    if qualifier:
        params["Qualifier"] = qualifier
    response = lambda_client.invoke(**params)
    body = response.get("Payload")
    return response, body.read() if body is not None else b""


def make_client(session: boto3.Session, target: TargetInfo, service: str, config: Config = CLIENT_CONFIG) -> Any:
    """A boto3 client bound to the target, standard retry mode unless ``config`` says otherwise: every client
    the harness makes.

    Built holding ``harness.environment.LOCK``: botocore reads the environment while it builds one.
    """
    with environment.LOCK:
        return session.client(service, endpoint_url=target["endpoint_url"], config=config)


class TargetClients:
    """A boto3 session bound to a target and its clients, one per service, each made on first use.

    A boto3 session is not thread-safe (its clients are): one thread at a time
    makes clients. Made ahead, while a session waits for its stack, they are
    handed to the :class:`Stack` the tests use (see ``Role.clients_ahead``).
    """

    def __init__(self, target: TargetInfo, session: boto3.Session | None = None) -> None:
        self.target = target
        self.session = session or boto3_session(target)
        self._made: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        made = self._made.get(service)
        if made is None:
            made = self._made[service] = make_client(self.session, self.target, service)
        return made

    def made(self) -> list[Any]:
        """The clients made so far."""
        return list(self._made.values())

    def by_service(self) -> dict[str, Any]:
        """The clients made so far, by service."""
        return dict(self._made)

    def warm(self, services: Iterable[str]) -> None:
        """Make the clients of ``services`` now."""
        for service in services:
            self.client(service)


#: Resource type namespaces -> the boto3 client that tests and scenario steps use for them.
SERVICE_OF_TYPE = {
    "AWS::DynamoDB": "dynamodb",
    "AWS::Lambda": "lambda",
    "AWS::SQS": "sqs",
    "AWS::SNS": "sns",
    "AWS::S3": "s3",
    "AWS::Events": "events",
    "AWS::StepFunctions": "stepfunctions",
    "AWS::Kinesis": "kinesis",
}


def services_of(info: StackInfo) -> list[str]:
    """The clients a test of this stack is likely to call: one per service its resources belong to."""
    found = {SERVICE_OF_TYPE.get("::".join(t.split("::")[:2])) for t in info.get("resource_types", {}).values()}
    return sorted(s for s in found if s)


def exported_env(info: StackInfo) -> dict[str, str]:
    """Variables that let tests written for a deployed SAM stack run unchanged."""
    target = info["target"]
    env = {
        "AWS_SAM_STACK_NAME": info["name"],
        "HARNESS_STACK_NAME": info["name"],
        "HARNESS_STAGE": info["stage"],
        "STAGE": info["stage"],  # as the deploy command got it
        "AWS_REGION": target["region"],
        "AWS_DEFAULT_REGION": target["region"],
    }
    if len(info.get("stacks") or ()) > 1:
        env["HARNESS_STACKS"] = " ".join(info["stacks"])  # the whole set, in deploy order
    if target["endpoint_url"]:
        env["AWS_ENDPOINT_URL"] = target["endpoint_url"]
    if target["access_key_id"] and target["kind"] != "aws":
        env["AWS_ACCESS_KEY_ID"] = target["access_key_id"]
        env["AWS_SECRET_ACCESS_KEY"] = target["secret_access_key"] or ""
    return env


class Stack:
    """A deployed stack: name, stage, outputs, physical ids, and clients."""

    def __init__(
        self, info: StackInfo, session: boto3.Session | None = None, *, clients: TargetClients | None = None
    ) -> None:
        """``clients``: made ahead for the same target (else a session of its own, or ``session``'s)."""
        self.info = info
        if clients is None or clients.target != info["target"]:
            clients = TargetClients(info["target"], session)
        self._clients = clients

    @property
    def _session(self) -> boto3.Session:
        return self._clients.session

    @property
    def name(self) -> str:
        return self.info["name"]

    @property
    def stage(self) -> str:
        return self.info["stage"]

    @property
    def outputs(self) -> dict[str, str]:
        """Every output; for a set, merged across its stacks (see :meth:`output` for a key several define)."""
        return Outputs(self.info["outputs"], self.info.get("shared_outputs") or {})

    @property
    def stacks(self) -> list[str]:
        """The stacks of the app, in deploy order (one for a one-stack app)."""
        return list(self.info.get("stacks") or [self.name])

    @property
    def resources(self) -> dict[str, str]:
        """Physical ids by logical id."""
        return self.info["resources"]

    @property
    def region(self) -> str:
        return self.info["target"]["region"]

    @property
    def endpoint_url(self) -> str | None:
        return self.info["target"]["endpoint_url"]

    def resolve(self, ref: str) -> str:
        """A logical id -> its physical id, an output name -> its value, anything else as is."""
        return resolve_name(self, ref)

    def physical_id(self, logical_id: str, stack: str | None = None) -> str:
        """A resource's physical id by logical id; ``stack=`` picks the member of a set when several use the id."""
        resources = self.info["resources"]
        key = f"{stack}:{logical_id}" if stack is not None and f"{stack}:{logical_id}" in resources else logical_id
        if key in resources:
            return resources[key]
        owners = [k.split(":", 1)[0] for k in resources if k.endswith(f":{logical_id}")]
        if owners:
            raise KeyError(
                f"logical id {logical_id!r} is used by {len(owners)} stacks of the set: {', '.join(owners)}; "
                f'pick one: stack.physical_id("{logical_id}", stack="{owners[0]}")'
            )
        known = ", ".join(sorted(resources)) or "(none)"
        raise KeyError(f"stack {self.name} has no resource {logical_id!r}; it has: {known}") from None

    def output(self, key: str, stack: str | None = None) -> str:
        """An output's value; ``stack=`` picks the member of a set when several define ``key``."""
        if stack is not None:
            by_stack = self.info.get("stack_outputs") or {self.name: self.info["outputs"]}
            if stack not in by_stack:
                raise KeyError(f"{stack!r} is not a stack of this app; its stacks: {', '.join(by_stack)}")
            if key not in by_stack[stack]:
                known = ", ".join(sorted(by_stack[stack])) or "(none)"
                raise KeyError(f"stack {stack} has no output {key!r}; it has: {known}")
            return by_stack[stack][key]
        outputs = self.outputs
        if key in outputs or key in outputs.shared:
            return outputs[key]
        known = ", ".join(sorted([*outputs, *outputs.shared])) or "(none)"
        if len(self.stacks) > 1:
            raise KeyError(f"no stack of {', '.join(self.stacks)} has an output {key!r}; they have: {known}")
        raise KeyError(f"stack {self.name} has no output {key!r}; it has: {known}")

    def warm(self, services: list[str]) -> None:
        """Build the clients of ``services`` now (when the session starts), not inside the first test using them."""
        for service in services:
            self.client(service)

    def client(self, service: str) -> Any:
        """A boto3 client bound to the target, standard retry mode (one per service per Stack)."""
        return self._clients.client(service)

    def __repr__(self) -> str:
        return f"Stack({self.name!r}, stage={self.stage!r}, outputs={sorted(self.outputs)})"
