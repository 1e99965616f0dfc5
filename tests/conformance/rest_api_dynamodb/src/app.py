import json
import os
import uuid

import boto3

dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(os.environ["TABLE_NAME"])


def _response(status_code, body=None):
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body) if body is not None else "",
    }


def create_item(event):
    try:
        payload = json.loads(event.get("body") or "{}")
    except json.JSONDecodeError:
        return _response(400, {"message": "body must be JSON"})
    if not isinstance(payload.get("name"), str) or not payload["name"]:
        return _response(400, {"message": "name is required"})
    item = {"id": str(uuid.uuid4()), "name": payload["name"], "quantity": int(payload.get("quantity", 1))}
    table.put_item(Item=item)
    return _response(201, item)


def get_item(item_id):
    result = table.get_item(Key={"id": item_id})
    if "Item" not in result:
        return _response(404, {"message": f"item {item_id} not found"})
    item = result["Item"]
    return _response(200, {"id": item["id"], "name": item["name"], "quantity": int(item["quantity"])})


def list_items():
    items = table.scan(Limit=100).get("Items", [])
    return _response(200, {"items": [{"id": i["id"], "name": i["name"]} for i in items]})


def delete_item(item_id):
    table.delete_item(Key={"id": item_id})
    return _response(204)


def lambda_handler(event, context):
    method = event["httpMethod"]
    item_id = (event.get("pathParameters") or {}).get("id")
    if method == "POST":
        return create_item(event)
    if method == "GET" and item_id:
        return get_item(item_id)
    if method == "GET":
        return list_items()
    if method == "DELETE" and item_id:
        return delete_item(item_id)
    return _response(405, {"message": f"{method} not allowed"})
