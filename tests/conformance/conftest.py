"""The conformance corpus: small serverless apps, each a project of its own.

Nothing here is collected by the harness's own test run: each app's tests
need its deployed stack. ``tests/e2e/test_conformance_e2e.py`` copies an app
into a throw-away git project and runs its tests there, through the harness,
on the default target.
"""

collect_ignore_glob = ["*"]
