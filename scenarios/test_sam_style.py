"""An integration test written the usual way for a deployed SAM stack.

It knows nothing about the harness: it reads AWS_SAM_STACK_NAME, looks the
API URL up with boto3, and calls it with requests, exactly as the SAM sample
apps do. The harness makes it pass unchanged on the emulator.
"""

import os
import uuid

import boto3
import pytest
import requests


class TestApiGateway:
    @pytest.fixture()
    def api_gateway_url(self):
        """Get the API Gateway URL from Cloudformation Stack outputs"""
        stack_name = os.environ.get("AWS_SAM_STACK_NAME")

        if stack_name is None:
            raise ValueError("Please set the AWS_SAM_STACK_NAME environment variable to the name of your stack")

        client = boto3.client("cloudformation")

        try:
            response = client.describe_stacks(StackName=stack_name)
        except Exception as e:
            raise Exception(
                f'Cannot find stack {stack_name} \nPlease make sure a stack with the name "{stack_name}" exists'
            ) from e

        stacks = response["Stacks"]
        stack_outputs = stacks[0]["Outputs"]
        api_outputs = [output for output in stack_outputs if output["OutputKey"] == "ApiUrl"]

        if not api_outputs:
            raise KeyError(f"ApiUrl not found in stack {stack_name}")

        return api_outputs[0]["OutputValue"]  # Extract url from stack outputs

    def test_api_gateway(self, api_gateway_url):
        """Call the API Gateway endpoint and check the response"""
        order_id = f"sam-{uuid.uuid4().hex}"
        body = {"order_id": order_id, "customer_id": "c-1", "items": [{"sku": "ABC", "qty": 2}]}
        response = requests.post(api_gateway_url + "orders", json=body, timeout=30)

        assert response.status_code == 201
        assert response.json()["order_id"] == order_id

        response = requests.get(api_gateway_url + f"orders/{order_id}", timeout=30)
        assert response.status_code == 200
        assert response.json()["total_qty"] == 2
