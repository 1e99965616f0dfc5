"""Print the deployment's outputs as `terraform output -json` does (the API key is sensitive)."""

import json
import sys

state = json.load(open(sys.argv[1]))
print(
    json.dumps(
        {
            "table_name": {"value": state["table"], "type": "string", "sensitive": False},
            "function_name": {"value": state["function"], "type": "string", "sensitive": False},
            "queue_name": {"value": state["queue"], "type": "string", "sensitive": False},
            "api_key": {"value": state["api_key"], "type": "string", "sensitive": True},
        }
    )
)
