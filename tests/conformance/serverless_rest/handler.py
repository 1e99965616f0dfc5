"""Notes API: POST /notes stores a note, GET /notes/{id} reads it back."""

import json
import os
import uuid

import boto3

TABLE = boto3.resource("dynamodb").Table(os.environ["NOTES_TABLE"])


def _response(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def create_note(event, context):
    try:
        text = json.loads(event.get("body") or "{}")["text"]
    except (ValueError, KeyError, TypeError):
        return _response(400, {"error": 'send {"text": "..."}'})
    note = {"id": uuid.uuid4().hex, "text": str(text)}
    TABLE.put_item(Item=note)
    return _response(201, note)


def get_note(event, context):
    note_id = (event.get("pathParameters") or {}).get("id", "")
    item = TABLE.get_item(Key={"id": note_id}).get("Item")
    if item is None:
        return _response(404, {"error": f"no note {note_id}"})
    return _response(200, item)
