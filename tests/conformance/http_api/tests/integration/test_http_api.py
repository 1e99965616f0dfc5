import os

import boto3
import pytest
import requests


@pytest.fixture(scope="module")
def api_url():
    stack_name = os.environ.get("AWS_SAM_STACK_NAME")
    if stack_name is None:
        raise ValueError("Please set the AWS_SAM_STACK_NAME environment variable to the name of your stack")
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "HttpApiUrl").rstrip("/")


def test_hello(api_url):
    response = requests.get(f"{api_url}/hello", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "hello world", "route": "GET /hello"}


def test_hello_query_string(api_url):
    response = requests.get(f"{api_url}/hello", params={"name": "query"}, timeout=30)
    assert response.json()["message"] == "hello query"


def test_path_parameter(api_url):
    response = requests.get(f"{api_url}/hello/alice", timeout=30)
    assert response.status_code == 200
    assert response.json() == {"message": "hello alice", "route": "GET /hello/{name}"}


def test_echo_returns_plain_dict_as_json(api_url):
    response = requests.post(f"{api_url}/echo", json={"a": 1}, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"echo": {"a": 1}, "method": "POST"}


def test_unknown_route_is_404(api_url):
    assert requests.get(f"{api_url}/nope", timeout=30).status_code == 404


def test_wrong_method_is_404(api_url):
    assert requests.delete(f"{api_url}/echo", timeout=30).status_code == 404
