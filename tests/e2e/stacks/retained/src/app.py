import os

from greeting import greet


def handler(event, context):
    return {"message": greet(event.get("name", "world")), "audit_log": os.environ["AUDIT_LOG"]}
