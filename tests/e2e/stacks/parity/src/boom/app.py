def handler(event, context):
    print("about to fail on", event.get("order_id"))
    raise ValueError("boom")
