"""The two stacks. The api stack uses the table through a cross-stack reference:
the CDK turns it into an export of the data stack and an ``Fn::ImportValue`` in
the api stack, and deploys (and must delete) them in that order."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct


class DataStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.table = dynamodb.Table(
            self,
            "Orders",
            partition_key=dynamodb.Attribute(name="order_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # A branch copy holds test data only; production would RETAIN.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        cdk.CfnOutput(self, "OrdersTableName", value=self.table.table_name)


class ApiStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, table: dynamodb.ITable, code_dir: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        fn = lambda_.Function(
            self,
            "OrdersFunction",
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler="app.handler",
            code=lambda_.Code.from_asset(code_dir),  # built by `make build`: sources + pinned requirements
            tracing=lambda_.Tracing.ACTIVE,
            environment={"ORDERS_TABLE": table.table_name},
            timeout=cdk.Duration.seconds(10),
        )
        table.grant_read_write_data(fn)  # least privilege: this table only
        api = apigw.LambdaRestApi(
            self,
            "OrdersApi",
            handler=fn,
            deploy_options=apigw.StageOptions(stage_name="v1", tracing_enabled=True),
            # No account-wide CloudWatch role: CDK would retain it on delete.
            cloud_watch_role=False,
        )
        cdk.CfnOutput(self, "ApiUrl", value=api.url)
        cdk.CfnOutput(self, "FunctionName", value=fn.function_name)
