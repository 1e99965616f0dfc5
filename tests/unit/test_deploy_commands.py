"""The throw-away projects' deploy command: ``aws cloudformation deploy``'s words, run by boto3 unless asked.

The end-to-end tests and the reliability matrix deploy their tiny template with
``cfn_deploy.py`` (the CLI's steps through boto3: one interpreter, no AWS CLI
start-up); the runs whose subject is the AWS CLI ask for it with ``cli=True``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from reliability.support import CFN_DEPLOY, MINIMAL_TEMPLATE, PYTHON, deploy_argv


def test_the_default_deploy_is_the_boto3_script_with_the_clis_words() -> None:
    script = deploy_argv(MINIMAL_TEMPLATE)
    cli = deploy_argv(MINIMAL_TEMPLATE, cli=True)
    assert script[:2] == [PYTHON, str(CFN_DEPLOY)] and Path(script[1]).is_file()
    assert cli[:3] == ["aws", "cloudformation", "deploy"]
    assert script[2:] == cli[3:]
    assert {"--stack-name", "{stack_name}", "--tags", "{tags}", "--no-fail-on-empty-changeset"} <= set(script)


def test_the_script_takes_every_option_of_the_command() -> None:
    words = deploy_argv(MINIMAL_TEMPLATE)
    proc = subprocess.run([*words[:2], "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    for word in words[2:]:
        if word.startswith("--"):
            assert word in proc.stdout, (word, proc.stdout)
