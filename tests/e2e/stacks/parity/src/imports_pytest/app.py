import pytest  # the harness's test runner: never in a Lambda runtime


def handler(event, context):
    return {"pytest": pytest.__version__}
