import os
import urllib.parse

import boto3

s3 = boto3.client("s3")
DESTINATION_BUCKET = os.environ["DESTINATION_BUCKET"]


def lambda_handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"], encoding="utf-8")
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        normalized = " ".join(body.split()).upper()
        out_key = "normalized/" + key.split("/", 1)[1]
        s3.put_object(
            Bucket=DESTINATION_BUCKET,
            Key=out_key,
            Body=normalized.encode("utf-8"),
            ContentType="text/plain",
            Metadata={"source-key": key},
        )
        print(f"s3://{bucket}/{key} -> s3://{DESTINATION_BUCKET}/{out_key}")
