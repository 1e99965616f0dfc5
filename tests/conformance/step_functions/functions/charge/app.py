import uuid


class ChargeDeclined(Exception):
    pass


def lambda_handler(event, context):
    if event["amount"] > 10_000:
        raise ChargeDeclined(f"amount {event['amount']} exceeds the card limit")
    return {
        "status": "CHARGED",
        "chargeId": str(uuid.uuid4()),
        "amount": event["amount"],
        "currency": event["currency"],
    }
