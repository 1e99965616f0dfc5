#!/bin/sh
# The set's production deploy: the data stack, then the api stack that imports from it.
# Both get the harness's tags; the api stack is the one named by STACK_NAME.
# cfn_deploy.py takes `aws cloudformation deploy`'s words (and does its steps) but checks
# the stack every half second: the CLI's 30 s between checks outlasted the custom resource.
set -eu
here=$(dirname "$0")
python "$here/cfn_deploy.py" --template-file "$here/data.yaml" --stack-name "sets-data-$STAGE" \
  --parameter-overrides "Stage=$STAGE" "Broken=${BROKEN:-no}" "Retain=${RETAIN:-no}" --no-fail-on-empty-changeset --tags $HARNESS_STACK_TAGS
python "$here/cfn_deploy.py" --template-file "$here/api.yaml" --stack-name "$STACK_NAME" --capabilities CAPABILITY_IAM \
  --parameter-overrides "Stage=$STAGE" "Undeletable=${UNDELETABLE:-no}" "Retain=${RETAIN:-no}" --no-fail-on-empty-changeset \
  --tags $HARNESS_STACK_TAGS
