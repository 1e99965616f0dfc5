#!/bin/sh
# Package the nested application into an artifact bucket, then deploy (as `sam deploy` does;
# cfn_deploy.py is `aws cloudformation deploy` checking every half second, not every 30 s).
set -eu
here=$(dirname "$0")
bucket="sets-artifacts-$STAGE"
aws s3api head-bucket --bucket "$bucket" 2>/dev/null || aws s3 mb "s3://$bucket" >/dev/null
aws cloudformation package --template-file "$here/outer.yaml" --s3-bucket "$bucket" \
  --output-template-file "$here/packaged.yaml" >/dev/null
python "$here/cfn_deploy.py" --template-file "$here/packaged.yaml" --stack-name "$STACK_NAME" \
  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset --tags $HARNESS_STACK_TAGS
