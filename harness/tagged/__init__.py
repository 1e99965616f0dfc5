"""Deploys without CloudFormation (Terraform, Pulumi, scripts): found, verified and collected by tags.

* :mod:`~harness.tagged.discover`: the resources carrying the harness's tags;
* :mod:`~harness.tagged.outputs`: the deploy's outputs from ``outputs-command``;
* :mod:`~harness.tagged.deployment` / :mod:`~harness.tagged.teardown`: the deploy and teardown jobs;
* :mod:`~harness.tagged.masking`: sensitive outputs kept out of every report;
* :mod:`~harness.tagged.deleters`, :mod:`~harness.tagged.inventory`, :mod:`~harness.tagged.gc`:
  ``harness ls`` and ``harness gc``.

The lifecycle reaches them through :mod:`harness.kinds`.
"""
