import json


def test_greets_with_the_layer(stack):
    resp = stack.client("lambda").invoke(FunctionName=stack.outputs["GreetFunctionName"], Payload=b'{"name": "ci"}')
    assert "FunctionError" not in resp, resp["Payload"].read()
    body = json.loads(resp["Payload"].read())
    assert body == {"message": "hello, ci", "audit_log": stack.outputs["AuditLogGroup"]}


def test_audit_log_group_exists(stack):
    logs = stack.client("logs")
    name = stack.outputs["AuditLogGroup"]
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]] == [name]
