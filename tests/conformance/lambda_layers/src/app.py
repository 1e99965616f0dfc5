from shared import format_quote, page_size, respond, sample_rate

QUOTES = [
    {"text": "Simplicity is prerequisite for reliability.", "author": "Edsger W. Dijkstra"},
    {"text": "Make it work, make it right, make it fast.", "author": "Kent Beck"},
    {"text": "Premature optimization is the root of all evil.", "author": "Donald Knuth"},
]


def list_quotes(event, context):
    page = int((event.get("queryStringParameters") or {}).get("page", "1"))
    size = page_size()
    chunk = QUOTES[(page - 1) * size : page * size]
    return respond(200, {"page": page, "quotes": [format_quote(q) for q in chunk], "sampleRate": sample_rate()})


def get_quote(event, context):
    index = event["pathParameters"]["index"]
    if not index.isdigit() or int(index) >= len(QUOTES):
        return respond(404, {"message": f"no quote {index}"})
    return respond(200, {"quote": format_quote(QUOTES[int(index)])})
