"""The projects under this folder are deployed and tested by the e2e tests, never collected here."""

collect_ignore_glob = ["*"]
