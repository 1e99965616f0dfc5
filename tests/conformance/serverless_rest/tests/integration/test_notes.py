"""The notes API as deployed: the stage's stack is found by its name, as the team's CI does it."""

import os
import uuid

import boto3
import pytest
import requests

STACK_NAME = f"notes-sls-{os.environ['STAGE']}"


@pytest.fixture(scope="module")
def outputs():
    stack = boto3.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def test_a_note_is_stored_and_read_back(outputs):
    text = f"note {uuid.uuid4().hex}"
    created = requests.post(f"{outputs['ServiceEndpoint']}/notes", json={"text": text}, timeout=30)
    assert created.status_code == 201, created.text
    note = created.json()
    item = boto3.client("dynamodb").get_item(TableName=outputs["NotesTableName"], Key={"id": {"S": note["id"]}})
    assert item["Item"]["text"]["S"] == text
    read = requests.get(f"{outputs['ServiceEndpoint']}/notes/{note['id']}", timeout=30)
    assert read.status_code == 200 and read.json() == note


def test_an_unknown_note_is_404(outputs):
    assert requests.get(f"{outputs['ServiceEndpoint']}/notes/nope", timeout=30).status_code == 404


def test_a_note_without_text_is_400(outputs):
    assert requests.post(f"{outputs['ServiceEndpoint']}/notes", json={}, timeout=30).status_code == 400
