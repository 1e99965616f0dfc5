"""The orders app in the AWS CDK: a data stack (table, export) and an api stack that imports it.

    STAGE=dev1 cdk deploy --all   ->  orders-cdk-data-dev1, orders-cdk-api-dev1

``STAGE`` (required) and ``APP`` (default ``orders-cdk``) come from the
environment, as ``make deploy`` passes them; the stack names follow them.
"""

from __future__ import annotations

import os
import re

import aws_cdk as cdk
from orders_cdk.stacks import ApiStack, DataStack

STAGE = os.environ.get("STAGE", "")
APP = os.environ.get("APP", "orders-cdk")
if not re.fullmatch(r"[a-z][a-z0-9-]*", STAGE):
    raise SystemExit("STAGE must be set and match ^[a-z][a-z0-9-]*$ (e.g. STAGE=dev1)")

app = cdk.App()
data = DataStack(app, "Data", stack_name=f"{APP}-data-{STAGE}")
ApiStack(
    app, "Api", stack_name=f"{APP}-api-{STAGE}", table=data.table, code_dir=os.environ.get("CODE_DIR", ".build/api")
)
app.synth()
