from harness.urls import to_emulator

EP = "http://127.0.0.1:4566"


def test_execute_api_url_goes_to_the_emulator() -> None:
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/orders/1?x=1"
    assert to_emulator(url, EP) == "http://127.0.0.1:4566/_aws/execute-api/abc123/Prod/orders/1?x=1"


def test_other_urls_and_aws_target_unchanged() -> None:
    assert to_emulator("https://example.com/Prod/x", EP) == "https://example.com/Prod/x"
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/Prod/"
    assert to_emulator(url, None) == url


def test_lookalike_hosts_are_not_rewritten() -> None:
    url = "https://abc.execute-api.us-east-1.amazonaws.com.evil.example/Prod/"
    assert to_emulator(url, EP) == url


def test_redact_hides_credentials_in_urls() -> None:
    from harness.urls import redact

    assert redact("http://user:s3cret@127.0.0.1:4566/x") == "http://***@127.0.0.1:4566/x"
    assert redact("http://127.0.0.1:4566") == "http://127.0.0.1:4566"
