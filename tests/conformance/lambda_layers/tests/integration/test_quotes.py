import os

import boto3
import pytest
import requests


@pytest.fixture(scope="module")
def outputs():
    stack = boto3.client("cloudformation").describe_stacks(StackName=os.environ["AWS_SAM_STACK_NAME"])["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_list_uses_the_layer(outputs):
    response = requests.get(outputs["QuotesApi"], timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["X-Shared-Layer"] == "1.2.0"
    body = response.json()
    assert body["quotes"] == [
        "\u201cSimplicity is prerequisite for reliability.\u201d \u2014 Edsger W. Dijkstra",
        "\u201cMake it work, make it right, make it fast.\u201d \u2014 Kent Beck",
    ]
    assert body["sampleRate"] == 0.1


def test_second_page(outputs):
    response = requests.get(outputs["QuotesApi"], params={"page": "2"}, timeout=30)
    assert [q.split("\u2014")[1].strip() for q in response.json()["quotes"]] == ["Donald Knuth"]


def test_get_one_and_missing(outputs):
    assert requests.get(f"{outputs['QuotesApi']}/1", timeout=30).json() == {
        "quote": "\u201cMake it work, make it right, make it fast.\u201d \u2014 Kent Beck"
    }
    assert requests.get(f"{outputs['QuotesApi']}/9", timeout=30).status_code == 404


def test_function_is_configured_with_the_layer(outputs):
    config = boto3.client("lambda").get_function_configuration(FunctionName=outputs["QuoteFunctionName"])
    assert [layer["Arn"] for layer in config["Layers"]] == [outputs["SharedLayerArn"]]
