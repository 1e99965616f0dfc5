"""Gap: IAM denies ``s3:ListAllMyBuckets`` granted on ``arn:aws:s3:::*``.

AWS: ListBuckets is authorized against the account's whole S3 namespace, and
the S3 user guide's own policies grant it as
``{"Action": "s3:ListAllMyBuckets", "Resource": "arn:aws:s3:::*"}``
(``Resource: "*"`` works too). MiniStack 1.5.33's
``iam_actions.extract_resource_arn`` gives a request without a bucket the
resource ``*``, and the evaluator matches the request's resource against the
policy's patterns literally, so the pattern ``arn:aws:s3:::*`` never matches
the string ``*``: a function allowed to list buckets gets AccessDenied.

The adaptation: a ListBuckets request (``GET /`` without a bucket, the one
operation ``_s3_action`` maps to ``ListAllMyBuckets``) addresses the resource
``arn:aws:s3:::*``. Every S3-wide pattern (``*``, ``arn:aws:s3:::*``,
``arn:*:s3:::*``) matches it; a pattern naming a bucket (``arn:aws:s3:::b``,
``arn:aws:s3:::b/*``) does not, as on AWS. No bucket is called ``*``, so no
bucket policy applies. The callers import ``extract_resource_arn`` from the
module at call time, so replacing the module attribute reaches all of them.

Upstream, the same change is three lines in ``extract_resource_arn``'s S3
branch: ``if not parts: return "arn:aws:s3:::*" if method == "GET" ... else "*"``.
"""

from __future__ import annotations

import functools
from typing import Any

from harness.emulator import guard

NAME = "iam-s3-list-buckets-resource"
LIST_BUCKETS_RESOURCE = "arn:aws:s3:::*"

_MODULE = "ministack.core.iam_actions"
_PARAMS = ("service", "method", "path", "headers", "body", "query_params", "region", "account_id")
#: Functions of ``ministack.app`` that import ``extract_resource_arn`` in their body (at call time).
_CALLERS = ("_enforce_rds_data", "_enforce_mrap_request", "_handle_s3_vhost_request", "_dispatch_service_request")


def _callers_import_at_call_time(app: Any) -> None:
    """A module-level copy of ``extract_resource_arn`` would bypass the patch: refuse it."""
    if hasattr(app, "extract_resource_arn"):
        raise guard.AdaptationError(f"{NAME}: ministack.app holds its own copy of extract_resource_arn")
    for caller in _CALLERS:
        guard.calls_by_name(app, caller, "extract_resource_arn", NAME)


def apply() -> None:
    """Make ListBuckets address ``arn:aws:s3:::*`` instead of ``*``."""
    iam_actions = guard.module(_MODULE, NAME)
    original = guard.function(iam_actions, "extract_resource_arn", _PARAMS, NAME)
    s3_action = guard.function(iam_actions, "_s3_action", ("method", "path", "query_params"), NAME)
    _callers_import_at_call_time(guard.module("ministack.app", NAME))
    if guard.adapted(original, NAME):
        return
    if s3_action("GET", "/", {}) != "ListAllMyBuckets" or original("s3", "GET", "/", {}, b"", {}, "", "") != "*":
        raise guard.AdaptationError(
            f"{NAME}: ListBuckets no longer resolves to the resource '*'; remove the adaptation"
        )

    @functools.wraps(original)
    def extract_resource_arn(
        service: str,
        method: str,
        path: str,
        headers: dict[str, Any],
        body: bytes,
        query_params: dict[str, Any],
        region: str,
        account_id: str,
    ) -> str:
        arn: str = original(service, method, path, headers, body, query_params, region, account_id)
        if (
            arn == "*"
            and service == "s3"
            and not [p for p in path.split("/") if p]
            and s3_action(method, path, query_params) == "ListAllMyBuckets"
        ):
            return LIST_BUCKETS_RESOURCE
        return arn

    iam_actions.extract_resource_arn = guard.mark(extract_resource_arn, NAME)
