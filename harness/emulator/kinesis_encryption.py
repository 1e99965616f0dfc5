"""Adaptation: CloudFormation's ``AWS::Kinesis::Stream`` applies ``StreamEncryption``.

The gap (MiniStack 1.5.33): the resource's create handler stores every stream
with ``EncryptionType: NONE`` and the update handler never looks at
``StreamEncryption``, although the service's own ``StartStreamEncryption``
and ``StopStreamEncryption`` work. On AWS the property encrypts the stream
(``DescribeStreamSummary`` reports ``KMS`` and the key), and removing it in an
update stops the encryption.

The adaptation wraps both handlers in ``_RESOURCE_HANDLERS`` and, once the
original ran, sets the stream's encryption from the property the way
``StartStreamEncryption`` / ``StopStreamEncryption`` do.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from harness.emulator import guard

NAME = "cloudformation-kinesis-stream-encryption"
RESOURCE_TYPE = "AWS::Kinesis::Stream"
CREATE = ("_kinesis_stream_create", ("logical_id", "props", "stack_name"))
UPDATE = ("_kinesis_stream_update", ("physical_id", "old_props", "new_props", "stack_name"))


def apply_encryption(stream: dict[str, Any], props: Mapping[str, Any]) -> None:
    """Set a stream record's encryption from its template properties (absent property: none)."""
    spec = props.get("StreamEncryption")
    if isinstance(spec, Mapping) and spec.get("EncryptionType", "NONE") != "NONE":
        stream["EncryptionType"] = spec["EncryptionType"]
        stream["KeyId"] = spec.get("KeyId", "")
    else:
        stream["EncryptionType"] = "NONE"
        stream.pop("KeyId", None)


def apply() -> None:
    """Make CloudFormation's ``AWS::Kinesis::Stream`` honour ``StreamEncryption``.

    Raises ``AdaptationError`` if a wrapped handler is missing or changed
    shape, or if the original handlers read the property already.
    """
    service = guard.module("ministack.services.kinesis", NAME)
    if not hasattr(service, "_streams"):
        raise guard.AdaptationError(f"{NAME}: ministack.services.kinesis._streams is missing")
    create = guard.cfn_handler(RESOURCE_TYPE, "create", *CREATE, NAME)
    update = guard.cfn_handler(RESOURCE_TYPE, "update", *UPDATE, NAME)
    if guard.adapted(create, NAME):
        return  # applied already in this process
    if any("StreamEncryption" in fn.__code__.co_consts for fn in (create, update)):
        raise guard.AdaptationError(
            f"{NAME}: the {RESOURCE_TYPE} handlers read StreamEncryption already; "
            "the emulator closed this gap, remove the adaptation"
        )

    def encrypt(result: Any, props: Mapping[str, Any]) -> Any:
        stream = service._streams.get(result[0])
        if isinstance(stream, dict):
            apply_encryption(stream, props)
        return result

    @functools.wraps(create)
    def adapted_create(logical_id: str, props: dict[str, Any], stack_name: str) -> Any:
        return encrypt(create(logical_id, props, stack_name), props)

    @functools.wraps(update)
    def adapted_update(physical_id: str, old_props: dict[str, Any], new_props: dict[str, Any], stack_name: str) -> Any:
        return encrypt(update(physical_id, old_props, new_props, stack_name), new_props)

    guard.replace_cfn_handler(RESOURCE_TYPE, "create", CREATE[0], guard.mark(adapted_create, NAME))
    guard.replace_cfn_handler(RESOURCE_TYPE, "update", UPDATE[0], guard.mark(adapted_update, NAME))
