import tabulate  # installed for the harness, not in this function's bundle


def handler(event, context):
    return {"tabulate": tabulate.__version__}
