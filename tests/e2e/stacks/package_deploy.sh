#!/bin/sh
# The stack's deploy: package each function's folder (its bundle) and deploy, as a SAM/Makefile app does.
set -eu
bucket="parity-artifacts-$STAGE"
aws s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || aws s3 mb "s3://$bucket" >/dev/null
aws cloudformation package --template-file template.yaml --s3-bucket "$bucket" \
  --output-template-file packaged.yaml >/dev/null
# HARNESS_STACK_TAGS is a list of Key=Value words.
# shellcheck disable=SC2086
aws cloudformation deploy --template-file packaged.yaml --stack-name "$STACK_NAME" \
  --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --tags $HARNESS_STACK_TAGS
