"""Helpers shared by the quotes functions (packaged as a Lambda layer, mounted at /opt/python)."""

import json
import os

VERSION = "1.2.0"


def respond(status_code, body):
    return {
        "statusCode": status_code,
        "headers": {"Content-Type": "application/json", "X-Shared-Layer": VERSION},
        "body": json.dumps(body),
    }


def format_quote(quote):
    return f"\u201c{quote['text']}\u201d \u2014 {quote['author']}"


def page_size():
    return int(os.environ.get("QUOTES_PER_PAGE", "10"))


def sample_rate():
    return float(os.environ.get("POWERTOOLS_LOGGER_SAMPLE_RATE", "0"))
