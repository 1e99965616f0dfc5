SUPPORTED_CURRENCIES = {"EUR", "USD", "GBP"}


def lambda_handler(event, context):
    amount = event.get("amount")
    if not isinstance(amount, (int, float)) or amount <= 0:
        return {"valid": False, "reason": "amount must be a positive number"}
    if event.get("currency") not in SUPPORTED_CURRENCIES:
        return {"valid": False, "reason": f"unsupported currency {event.get('currency')!r}"}
    return {"valid": True, "reason": None}
