"""What a deploy leaves, as one small strategy the lifecycle calls: CloudFormation stacks, or tagged resources.

The setting ``deploy-kind`` picks one:

* ``cloudformation``: the deploy command makes stacks (SAM, CDK, ``aws
  cloudformation deploy``); deploy job :class:`harness.deployment.Deployer`,
  teardown :class:`harness.teardown.Teardown`; drift and fidelity reports;
* ``tagged``: Terraform, Pulumi or scripts make resources carrying the harness's
  tags and no stack; :mod:`harness.tagged` (needs ``destroy-command``);
* ``auto``: a stack if the deploy made one (or one is there), else tagged resources.

Everything else of the run (plan, target, fingerprint, lease, shards,
protected stages) is the same for every kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from harness import deploy
from harness.deployment import Deployed, Deployer
from harness.errors import ConfigError, NoStackCreated
from harness.settings import Settings
from harness.stack import StackInfo
from harness.stackops import StackOps

if TYPE_CHECKING:  # the teardowns and the tagged deploy: imported when their kind uses them, not before a deploy
    from harness.teardown import TeardownReport

CLOUDFORMATION = "cloudformation"
TAGGED = "tagged"


class DeployJob(Protocol):
    def run(self, *, owner: bool = True) -> StackInfo: ...


class TeardownJob(Protocol):
    seconds: float | None

    def run(self, report: TeardownReport) -> None: ...


class Kind(Protocol):
    """One deploy kind: how to check the settings, deploy, and tear down."""

    name: str

    def check(self, settings: Settings) -> None:
        """Refuse settings this kind cannot work with (before anything starts)."""

    def deployer(self, ops: StackOps, deployed: Deployed, **job: Any) -> DeployJob: ...

    def teardown(self, ops: StackOps, deployed: Deployed, **job: Any) -> TeardownJob: ...


class CloudFormationKind:
    name = CLOUDFORMATION

    def check(self, settings: Settings) -> None:
        pass

    def deployer(self, ops: StackOps, deployed: Deployed, **job: Any) -> DeployJob:
        return Deployer(ops, deployed, **job)

    def teardown(self, ops: StackOps, deployed: Deployed, **job: Any) -> TeardownJob:
        from harness.teardown import Teardown

        return Teardown(ops, deployed, **job)


class TaggedKind:
    name = TAGGED

    def check(self, settings: Settings) -> None:
        if not settings.destroy_command:
            raise ConfigError(
                "deploy-kind is 'tagged' but no destroy-command is set: without a stack, only the project's own "
                "destroy command knows how to remove what its deploy made",
                hint='set destroy-command in [tool.harness], e.g. destroy-command = ["make", "destroy"] '
                "(terraform destroy -auto-approve, pulumi destroy --yes)",
            )

    def deployer(self, ops: StackOps, deployed: Deployed, **job: Any) -> DeployJob:
        from harness.tagged.deployment import TaggedDeployer

        return TaggedDeployer(ops, deployed, **job)

    def teardown(self, ops: StackOps, deployed: Deployed, **job: Any) -> TeardownJob:
        from harness.tagged.teardown import TaggedTeardown

        return TaggedTeardown(ops, deployed, **job)


class AutoKind:
    """A stack when there is one, else tagged resources; decided before the deploy when something exists."""

    name = "auto"

    def check(self, settings: Settings) -> None:
        pass

    def deployer(self, ops: StackOps, deployed: Deployed, **job: Any) -> DeployJob:
        return _AutoDeployer(ops, deployed, job)

    def teardown(self, ops: StackOps, deployed: Deployed, **job: Any) -> TeardownJob:
        from harness.tagged.deployment import find_resources
        from harness.tagged.teardown import TaggedTeardown
        from harness.teardown import Teardown

        if deployed.kind == TAGGED:
            return TaggedTeardown(ops, deployed, **job)
        try:
            cfn = ops.client("cloudformation")
            no_stack = deployed.stack_id is None and not deploy.stack_status(cfn, ops.plan.stack_name)
            if no_stack and find_resources(ops):  # a failed deploy that made tagged resources only
                return TaggedTeardown(ops, deployed, **job)
        except Exception:  # noqa: BLE001 - the stack teardown reads again and reports what fails
            pass
        return Teardown(ops, deployed, **job)


class _AutoDeployer:
    def __init__(self, ops: StackOps, deployed: Deployed, job: dict[str, Any]) -> None:
        self.ops, self.deployed, self.job = ops, deployed, job

    def run(self, *, owner: bool = True) -> StackInfo:
        from harness.tagged.deployment import TaggedDeployer

        tagged = TaggedDeployer(self.ops, self.deployed, **self.job)
        if deploy.stack_status(self.ops.client("cloudformation"), self.ops.plan.stack_name) is None and tagged.find():
            return tagged.run(owner=owner)  # an earlier tagged deploy of this stage
        try:
            return Deployer(self.ops, self.deployed, **self.job).run(owner=owner)
        except NoStackCreated:
            found = tagged.find()
            if not found:
                raise
        self.ops.out(f"deploy-kind auto: no CloudFormation stack, {len(found)} resources carry the harness's tags")
        return tagged.describe(found)


KINDS: dict[str, type[CloudFormationKind] | type[TaggedKind] | type[AutoKind]] = {
    CLOUDFORMATION: CloudFormationKind,
    TAGGED: TaggedKind,
    "auto": AutoKind,
}


def kind_for(settings: Settings) -> Kind:
    return KINDS[str(settings.deploy_kind)]()
