import os

import boto3
import pytest
import requests

"""
Make sure env variable AWS_SAM_STACK_NAME exists with the name of the stack we are going to test.
"""


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
        api_outputs = [output for output in stack_outputs if output["OutputKey"] == "ItemsApi"]

        if not api_outputs:
            raise KeyError(f"ItemsApi not found in stack {stack_name}")

        return api_outputs[0]["OutputValue"]  # Extract url from stack outputs

    def test_create_then_get(self, api_gateway_url):
        created = requests.post(api_gateway_url, json={"name": "widget", "quantity": 3}, timeout=30)
        assert created.status_code == 201, created.text
        item = created.json()
        assert item["name"] == "widget"

        fetched = requests.get(f"{api_gateway_url}/{item['id']}", timeout=30)
        assert fetched.status_code == 200
        assert fetched.json() == {"id": item["id"], "name": "widget", "quantity": 3}

    def test_list_contains_created_item(self, api_gateway_url):
        item = requests.post(api_gateway_url, json={"name": "gadget"}, timeout=30).json()
        listed = requests.get(api_gateway_url, timeout=30)
        assert listed.status_code == 200
        assert {"id": item["id"], "name": "gadget"} in listed.json()["items"]

    def test_delete(self, api_gateway_url):
        item = requests.post(api_gateway_url, json={"name": "doomed"}, timeout=30).json()
        assert requests.delete(f"{api_gateway_url}/{item['id']}", timeout=30).status_code == 204
        assert requests.get(f"{api_gateway_url}/{item['id']}", timeout=30).status_code == 404

    def test_missing_item_is_404(self, api_gateway_url):
        response = requests.get(f"{api_gateway_url}/does-not-exist", timeout=30)
        assert response.status_code == 404
        assert response.json() == {"message": "item does-not-exist not found"}

    def test_invalid_body_is_400(self, api_gateway_url):
        response = requests.post(api_gateway_url, data="not json", timeout=30)
        assert response.status_code == 400
