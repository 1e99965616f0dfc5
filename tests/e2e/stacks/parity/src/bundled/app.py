import tabulate  # bundled next to this file (the test copies it in)


def handler(event, context):
    return {"tabulate": tabulate.__version__}
