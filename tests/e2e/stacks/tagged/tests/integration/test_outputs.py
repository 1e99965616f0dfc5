import os
from pathlib import Path


def test_outputs_and_resources(stack):
    assert stack.outputs["table_name"] == stack.name + "-orders"
    assert stack.resources[stack.name + "-fn"] == stack.name + "-fn"
    assert os.environ["AWS_SAM_STACK_NAME"] == stack.name


def test_the_sensitive_output_reaches_the_test(stack):
    key = stack.outputs["api_key"]
    print("the api key is", key)  # captured output goes to the reports: it must be masked there
    if os.environ.get("SECRET_SINK"):  # the e2e test looks for this value in every file afterwards
        Path(os.environ["SECRET_SINK"]).write_text(key)
    assert len(key) == 32
