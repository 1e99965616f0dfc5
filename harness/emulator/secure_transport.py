"""Gap: plain HTTP on loopback fails every ``aws:SecureTransport`` condition.

AWS: every SDK and CLI speaks TLS to AWS's endpoints, so a bucket policy that
denies ``"Bool": {"aws:SecureTransport": "false"}`` (the CDK bootstrap bucket's
policy, and many teams' own) denies none of their calls. MiniStack 1.5.33
listens in plain HTTP on its private loopback port, standing in for those TLS
endpoints, and evaluates the condition from the connection's scheme (its ASGI
``app`` calls ``pin_request_origin(source_ip, secure_transport)``): with IAM
enforced, every such policy denied every request, and ``cdk deploy`` could not
publish its assets (``Bucket named 'cdk-hnb659fds-assets-...' exists, but we
dont have access to it``).

The adaptation: a request that reached the emulator from a loopback address
counts as secure transport, as the SDK's request would on AWS. Every other
condition, and the deny itself, is evaluated as before (a policy denying
``aws:SecureTransport = true`` denies). What is lost: a client that would
really speak plain HTTP to AWS (an SDK configured with ``use_ssl=False``) is
not caught locally. The alternative, the emulator serving TLS
(``USE_SSL=1``) with its CA handed to every process
(``AWS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``, the Lambda runtimes' environment),
keeps that one check at the cost of an https endpoint everywhere.
"""

from __future__ import annotations

import functools

from harness.emulator import guard

NAME = "loopback-is-secure-transport"
_LOOPBACK = ("127.", "::1", "localhost")


def apply() -> None:
    """Treat a loopback request as the TLS request it stands in for."""
    app = guard.module("ministack.app", NAME)
    evaluator = guard.module("ministack.core.iam_evaluator", NAME)
    original = guard.function(app, "pin_request_origin", ("source_ip", "secure_transport"), NAME)
    if guard.adapted(original, NAME):
        return
    if original is not getattr(evaluator, "pin_request_origin", None):
        raise guard.AdaptationError(
            f"{NAME}: ministack.app.pin_request_origin is no longer the evaluator's; "
            "the adaptation was written for the pinned version"
        )
    guard.calls_by_name(app, "app", "pin_request_origin", NAME)

    @functools.wraps(original)
    def pin_request_origin(source_ip: str, secure_transport: bool) -> None:
        loopback = isinstance(source_ip, str) and source_ip.startswith(_LOOPBACK)
        original(source_ip, secure_transport or loopback)

    app.pin_request_origin = guard.mark(pin_request_origin, NAME)
