"""S3 and Kinesis: ``put_object``, ``expect_object``, ``put_record``.

``expect_object`` polls the object until it exists and the step's
``expect`` matches its content (JSON-decoded when it is JSON), so a test
waits for what a function writes rather than for a fixed time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from harness.scenarios.actions import Observation, StepContext, action, decode_bytes, resolve_ref
from harness.scenarios.matchers import Mismatch
from harness.scenarios.schema import SpecError
from harness.scenarios.schema import field as f
from harness.scenarios.templating import jsonable, stringify

# -- S3 ----------------------------------------------------------------------


def bucket_name(ctx: StepContext, ref: Any) -> str:
    value = resolve_ref(ctx, ref, "bucket")
    value = value.removeprefix("arn:aws:s3:::")  # an output may hold the bucket's ARN
    ctx.detail = f"bucket {value}"
    return value


def _validate_put_object(args: Mapping[str, Any], line: int) -> None:
    if ("body" in args) == ("json" in args):
        raise SpecError(
            "put_object needs exactly one of `body` (a string) or `json` (any value, JSON-encoded)",
            line,
            hint="e.g. put_object: {bucket: UploadsBucket, key: in/x.json, json: {order_id: x}}",
        )


@action(
    "put_object",
    fields={
        "bucket": f("str", required=True, example="bucket: UploadsBucket"),
        "key": f("str", required=True, example="key: incoming/{{ unique }}.json"),
        "body": f("str"),
        "json": f("any"),
        "content_type": f("str"),
        "metadata": f("mapping"),
    },
    observes=("etag", "version_id"),
    example="put_object: {bucket: UploadsBucket, key: 'in/{{ unique }}.json', json: {order_id: x}}",
    summary=lambda a: f"put_object {a.get('bucket')}/{a.get('key')}",
    validate=_validate_put_object,
)
def run_put_object(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Write one object (``json`` is encoded, with content type application/json unless given)."""
    params: dict[str, Any] = {"Bucket": bucket_name(ctx, args["bucket"]), "Key": str(args["key"])}
    if "json" in args:
        params["Body"] = json.dumps(args["json"], default=jsonable).encode()
        params["ContentType"] = "application/json"
    else:
        params["Body"] = stringify(args["body"]).encode()
    if args.get("content_type"):
        params["ContentType"] = str(args["content_type"])
    if args.get("metadata"):
        params["Metadata"] = {str(k): stringify(v) for k, v in args["metadata"].items()}
    response = ctx.runtime.stack.client("s3").put_object(**params)
    return {"etag": response.get("ETag"), "version_id": response.get("VersionId")}


def _get_object(ctx: StepContext, bucket: str, key: str) -> Observation:
    s3 = ctx.runtime.stack.client("s3")
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return {}
    raw = response["Body"].read()
    body = decode_bytes(raw)
    return {
        "key": key,
        "body": "" if body is None else body,
        "content_type": response.get("ContentType"),
        "metadata": response.get("Metadata") or {},
        "size": len(raw),
    }


@action(
    "expect_object",
    fields={
        "bucket": f("str", required=True, example="bucket: UploadsBucket"),
        "key": f("str", required=True, example="key: receipts/{{ saved.order_id }}.json"),
        "within": f("number", minimum=0),
        "interval": f("number", minimum=0.001),
    },
    observes=("key", "body", "content_type", "metadata", "size"),
    example="expect_object: {bucket: ReceiptsBucket, key: 'receipts/{{ saved.order_id }}.json', within: 10}",
    summary=lambda a: f"expect_object {a.get('bucket')}/{a.get('key')}",
)
def run_expect_object(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Poll until the object exists and its content matches ``expect``, or ``within`` passes."""
    bucket, key = bucket_name(ctx, args["bucket"]), str(args["key"])

    def missing(observation: Observation) -> Mismatch | None:
        return None if observation else Mismatch("key", f"an object {key}", None, "not there yet")

    return ctx.poll_until_matched(
        lambda: _get_object(ctx, bucket, key), args, description=f"object {bucket}/{key}", missing=missing
    )


# -- Kinesis -----------------------------------------------------------------


@action(
    "put_record",
    fields={
        "stream": f("str", required=True, example="stream: ClicksStream"),
        "data": f("any", required=True, example="data: {order_id: abc}"),
        "partition_key": f("str"),
    },
    observes=("shard_id", "sequence_number"),
    example="put_record: {stream: ClicksStream, data: {order_id: abc}, partition_key: '{{ unique }}'}",
    summary=lambda a: f"put_record {a.get('stream')}",
)
def run_put_record(args: dict[str, Any], ctx: StepContext) -> Observation:
    """Put one record (non-strings JSON-encoded; partition key default: the test's unique id)."""
    stream = resolve_ref(ctx, args["stream"], "stream")
    stream = stream.split(":stream/", 1)[1] if stream.startswith("arn:") else stream
    ctx.detail = f"stream {stream}"
    response = ctx.runtime.stack.client("kinesis").put_record(
        StreamName=stream,
        Data=stringify(args["data"]).encode(),
        PartitionKey=str(args.get("partition_key") or ctx.runtime.unique),
    )
    return {"shard_id": response.get("ShardId"), "sequence_number": response.get("SequenceNumber")}
