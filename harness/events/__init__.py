"""Events a stack emits, seen without changing the app.

``pattern``: EventBridge event patterns (validation and matching), pure.
``listeners``: the temporary EventBridge rules and SNS subscriptions the
harness attaches to a branch stack, each delivering to a queue it owns.
"""
