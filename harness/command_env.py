"""What the deploy command, the destroy command and the tests find in their environment.

The harness's own variables are built here (:func:`deploy_vars`,
:func:`destroy_vars`; the tests' in :func:`harness.stack.exported_env`), and
:data:`VARIABLES` says what each means and who receives it. The README's table
is rendered from :data:`VARIABLES`, and a unit test checks it against what the
builders really set, so the documented names are the names.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Who can receive a variable (the README table's columns).
RECEIVERS = ("deploy", "destroy", "tests")


@dataclass(frozen=True)
class Variable:
    """One variable: its name, who receives it, and what it holds."""

    name: str
    receivers: tuple[str, ...]
    meaning: str
    # Set by the target, not by the harness (so absent on some targets).
    from_target: bool = False
    # Set for each run of a command (harness.deploy.run_command), not by the builders below.
    per_command: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable("STAGE", RECEIVERS, "the stage, from the branch (always `^[a-z][a-z0-9-]*$`)"),
    Variable("HARNESS_STAGE", RECEIVERS, "the same stage, under the harness's prefix"),
    Variable(
        "STACK_NAME",
        ("deploy", "destroy"),
        "the stack's name (`stack-name-pattern`; of a stack set, the primary stack's)",
    ),
    Variable("HARNESS_STACK_NAME", RECEIVERS, "the same stack name"),
    Variable("AWS_SAM_STACK_NAME", ("tests",), "the same stack name, as `sam` sets it for tests of a deployed stack"),
    Variable(
        "HARNESS_STACK_ID",
        ("destroy",),
        "the stack's id (its ARN), when the stack exists; never to be passed where a name is expected",
    ),
    Variable("HARNESS_STACKS", ("tests",), "every stack of the set, in deploy order, space-separated (sets of 2+)"),
    Variable("HARNESS_RUN_ID", ("deploy",), "this run's id (also in the `harness:run-id` stack tag)"),
    Variable(
        "HARNESS_STACK_TAGS",
        ("deploy",),
        "space-separated `Key=Value` words for the deploy's `--tags` (the harness's stack tags)",
    ),
    Variable(
        "HARNESS_STACK_TAGS_JSON",
        ("deploy",),
        "the same tags as one JSON object (Terraform's `default_tags`, Pulumi's default tags)",
    ),
    Variable(
        "AWS_ENDPOINT_URL",
        RECEIVERS,
        "the emulator's endpoint (local and endpoint targets only)",
        from_target=True,
    ),
    Variable(
        "AWS_ACCESS_KEY_ID",
        RECEIVERS,
        "dummy keys on an emulator; on aws the run's resolved credentials (fresh)",
        from_target=True,
    ),
    Variable("AWS_SECRET_ACCESS_KEY", RECEIVERS, "as `AWS_ACCESS_KEY_ID`", from_target=True),
    Variable(
        "AWS_SESSION_TOKEN",
        RECEIVERS,
        "on aws, with temporary credentials (an assumed role, OIDC, SSO)",
        from_target=True,
    ),
    Variable(
        "AWS_CREDENTIAL_EXPIRATION",
        RECEIVERS,
        "on aws, when the temporary credentials expire (SDKs re-read the environment then)",
        from_target=True,
    ),
    Variable(
        "AWS_ACCOUNT_ID",
        ("deploy", "destroy"),
        "the target's account: on aws the one the run's credentials belong to (checked against "
        "`allowed-accounts`), on the embedded emulator its own; on an endpoint none (one inherited from the shell "
        "is removed there too: the SDKs would pair it with the target's keys)",
        from_target=True,
    ),
    Variable(
        "AWS_REGION",
        RECEIVERS,
        "the region (on aws only when one was set: the command's own configuration decides otherwise)",
        from_target=True,
    ),
    Variable("AWS_DEFAULT_REGION", RECEIVERS, "the same region", from_target=True),
    Variable(
        "TMPDIR",
        ("deploy", "destroy"),
        "a temporary folder of the command's own, inside the one `TMPDIR` named (or the system's), removed when "
        "the command ends",
        per_command=True,
    ),
)


def names_for(receiver: str, *, from_target: bool | None = None, per_command: bool | None = None) -> set[str]:
    """The documented variables ``receiver`` gets (only the harness's or only the target's, only those set for
    each run of a command or only the others, if asked)."""
    return {
        v.name
        for v in VARIABLES
        if receiver in v.receivers
        and (from_target is None or v.from_target == from_target)
        and (per_command is None or v.per_command == per_command)
    }


def deploy_vars(*, stage: str, stack_name: str, run_id: str, stack_tags: str, stack_tags_json: str) -> dict[str, str]:
    """The harness's variables for the deploy command (the target's AWS variables come beside them)."""
    return {
        "STAGE": stage,
        "STACK_NAME": stack_name,
        "HARNESS_STAGE": stage,
        "HARNESS_STACK_NAME": stack_name,
        "HARNESS_RUN_ID": run_id,
        "HARNESS_STACK_TAGS": stack_tags,
        "HARNESS_STACK_TAGS_JSON": stack_tags_json,
    }


def destroy_vars(*, stage: str, stack_name: str, stack_id: str | None) -> dict[str, str]:
    """The harness's variables for the destroy command: the stack's name, and its id when it exists."""
    env = {
        "STAGE": stage,
        "STACK_NAME": stack_name,
        "HARNESS_STAGE": stage,
        "HARNESS_STACK_NAME": stack_name,
    }
    if stack_id:
        env["HARNESS_STACK_ID"] = stack_id
    return env


def stack_name_of(ref: str) -> str:
    """A CloudFormation stack's name from its id (``arn:...:stack/NAME/uuid``); a name as is."""
    if ref.startswith("arn:") and ":stack/" in ref:
        return ref.split(":stack/", 1)[1].split("/", 1)[0]
    return ref


def variables_markdown_table() -> str:
    """The README's table: every variable, who receives it, what it holds."""
    header = ["variable", *RECEIVERS, "what it holds"]
    rows = [[f"`{v.name}`", *("yes" if r in v.receivers else "" for r in RECEIVERS), v.meaning] for v in VARIABLES]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
