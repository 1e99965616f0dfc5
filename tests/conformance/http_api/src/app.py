import json


def hello(event, context):
    name = (event.get("pathParameters") or {}).get("name") or (event.get("queryStringParameters") or {}).get(
        "name", "world"
    )
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"hello {name}", "route": event["routeKey"]}),
    }


def echo(event, context):
    # Payload format 2.0: a plain dict return value becomes a 200 JSON response.
    body = json.loads(event.get("body") or "{}")
    return {"echo": body, "method": event["requestContext"]["http"]["method"]}
