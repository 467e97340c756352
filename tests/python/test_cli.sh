#!/usr/bin/env bash
# End-to-end test of a running atoll server through the AWS CLI.
# Usage: ATOLL_ENDPOINT=http://127.0.0.1:PORT tests/python/test_cli.sh
# Needs `aws` (v1 or v2) and python3 on PATH.
set -euo pipefail

: "${ATOLL_ENDPOINT:?set ATOLL_ENDPOINT to a running atoll server}"
export AWS_ACCESS_KEY_ID=AKIDATOLLCLI
export AWS_SECRET_ACCESS_KEY=atoll-cli-secret
export AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER=""
export AWS_MAX_ATTEMPTS=1
unset AWS_PROFILE AWS_SESSION_TOKEN

TABLE="cli-table-$$-$RANDOM"
PASSED=0

ddb() {
    aws dynamodb --endpoint-url "$ATOLL_ENDPOINT" --region us-east-1 --output json "$@"
}

# json_get EXPR: evaluates a Python expression over the JSON document `d`
# read from stdin and prints the result.
json_get() {
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

check() { # check NAME ACTUAL EXPECTED
    if [[ "$2" != "$3" ]]; then
        echo "FAIL: $1: expected [$3], got [$2]" >&2
        exit 1
    fi
    echo "ok - $1"
    PASSED=$((PASSED + 1))
}

cleanup() {
    ddb delete-table --table-name "$TABLE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

out=$(ddb create-table \
    --table-name "$TABLE" \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=N \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST)
check "create-table returns the name" "$(json_get 'd["TableDescription"]["TableName"]' <<<"$out")" "$TABLE"
check "create-table ARN" "$(json_get 'd["TableDescription"]["TableArn"]' <<<"$out")" \
    "arn:aws:dynamodb:us-east-1:123456789012:table/$TABLE"

ddb wait table-exists --table-name "$TABLE"
out=$(ddb describe-table --table-name "$TABLE")
check "describe-table status" "$(json_get 'd["Table"]["TableStatus"]' <<<"$out")" "ACTIVE"
check "billing mode" "$(json_get 'd["Table"]["BillingModeSummary"]["BillingMode"]' <<<"$out")" "PAY_PER_REQUEST"

out=$(ddb list-tables)
check "list-tables includes the table" "$(json_get "'$TABLE' in d['TableNames']" <<<"$out")" "True"

ddb put-item --table-name "$TABLE" \
    --item '{"pk": {"S": "cli"}, "sk": {"N": "1.0"}, "msg": {"S": "hello from the cli"}, "tags": {"SS": ["a", "b"]}}'
out=$(ddb get-item --table-name "$TABLE" --key '{"pk": {"S": "cli"}, "sk": {"N": "1"}}' --consistent-read)
check "get-item message" "$(json_get 'd["Item"]["msg"]["S"]' <<<"$out")" "hello from the cli"
check "get-item normalised number" "$(json_get 'd["Item"]["sk"]["N"]' <<<"$out")" "1"
check "get-item string set" "$(json_get 'sorted(d["Item"]["tags"]["SS"])' <<<"$out")" "['a', 'b']"

out=$(ddb batch-write-item --request-items "{
    \"$TABLE\": [
        {\"PutRequest\": {\"Item\": {\"pk\": {\"S\": \"batch\"}, \"sk\": {\"N\": \"1\"}}}},
        {\"PutRequest\": {\"Item\": {\"pk\": {\"S\": \"batch\"}, \"sk\": {\"N\": \"2\"}}}},
        {\"DeleteRequest\": {\"Key\": {\"pk\": {\"S\": \"cli\"}, \"sk\": {\"N\": \"1\"}}}}
    ]}")
check "batch-write-item leaves nothing unprocessed" "$(json_get 'd["UnprocessedItems"]' <<<"$out")" "{}"

out=$(ddb batch-get-item --request-items "{
    \"$TABLE\": {\"Keys\": [
        {\"pk\": {\"S\": \"batch\"}, \"sk\": {\"N\": \"1\"}},
        {\"pk\": {\"S\": \"batch\"}, \"sk\": {\"N\": \"2\"}},
        {\"pk\": {\"S\": \"cli\"}, \"sk\": {\"N\": \"1\"}}
    ]}}")
check "batch-get-item finds the two puts" \
    "$(json_get "sorted(i['sk']['N'] for i in d['Responses']['$TABLE'])" <<<"$out")" "['1', '2']"

out=$(ddb delete-item --table-name "$TABLE" --key '{"pk": {"S": "batch"}, "sk": {"N": "2"}}' --return-values ALL_OLD)
check "delete-item returns the old item" "$(json_get 'd["Attributes"]["pk"]["S"]' <<<"$out")" "batch"
out=$(ddb get-item --table-name "$TABLE" --key '{"pk": {"S": "batch"}, "sk": {"N": "2"}}' --consistent-read)
[[ -n "$out" ]] || out='{}' # the CLI prints nothing for an empty response
check "deleted item is gone" "$(json_get '"Item" in d' <<<"$out")" "False"

# An update that only removes creates no item (DynamoDB's rule, issue 20).
out=$(ddb update-item --table-name "$TABLE" --key '{"pk": {"S": "nobody"}, "sk": {"N": "1"}}' \
    --update-expression 'REMOVE a, b.c' --return-values ALL_NEW)
[[ -n "$out" ]] || out='{}'
check "REMOVE on a missing item returns no attributes" "$(json_get '"Attributes" in d' <<<"$out")" "False"
out=$(ddb get-item --table-name "$TABLE" --key '{"pk": {"S": "nobody"}, "sk": {"N": "1"}}' --consistent-read)
[[ -n "$out" ]] || out='{}'
check "REMOVE on a missing item creates nothing" "$(json_get '"Item" in d' <<<"$out")" "False"

# Tagging answers with an empty body, which the CLI takes.
ARN="arn:aws:dynamodb:us-east-1:123456789012:table/$TABLE"
ddb tag-resource --resource-arn "$ARN" --tags Key=team,Value=cli
out=$(ddb list-tags-of-resource --resource-arn "$ARN")
check "tag-resource then list" "$(json_get 'd["Tags"]' <<<"$out")" "[{'Key': 'team', 'Value': 'cli'}]"
ddb untag-resource --resource-arn "$ARN" --tag-keys team
out=$(ddb list-tags-of-resource --resource-arn "$ARN")
check "untag-resource then list" "$(json_get 'd["Tags"]' <<<"$out")" "[]"

# Errors: non-zero exit and the exception name on stderr.
set +e
err=$(ddb get-item --table-name "no-such-table-$$" --key '{"pk": {"S": "x"}}' 2>&1 >/dev/null)
status=$?
set -e
check "get-item on a missing table fails" "$([[ $status -ne 0 ]] && echo nonzero || echo zero)" "nonzero"
check "error names ResourceNotFoundException" \
    "$(grep -q 'ResourceNotFoundException' <<<"$err" && echo yes || echo "no: $err")" "yes"

set +e
err=$(ddb put-item --table-name "$TABLE" --item '{"pk": {"N": "1"}, "sk": {"N": "1"}}' 2>&1 >/dev/null)
status=$?
set -e
check "wrong key type fails" "$([[ $status -ne 0 ]] && echo nonzero || echo zero)" "nonzero"
check "error names ValidationException" \
    "$(grep -q 'ValidationException' <<<"$err" && echo yes || echo "no: $err")" "yes"

# Transactions and PartiQL through `aws dynamodb`.
ddb transact-write-items --transact-items '[
  {"Put": {"TableName": "'"$TABLE"'", "Item": {"pk": {"S": "tx"}, "sk": {"N": "1"}, "n": {"N": "5"}}}},
  {"Update": {"TableName": "'"$TABLE"'", "Key": {"pk": {"S": "tx"}, "sk": {"N": "2"}},
              "UpdateExpression": "SET n = :v", "ExpressionAttributeValues": {":v": {"N": "7"}}}}]' >/dev/null
out=$(ddb transact-get-items --transact-items '[
  {"Get": {"TableName": "'"$TABLE"'", "Key": {"pk": {"S": "tx"}, "sk": {"N": "1"}}}},
  {"Get": {"TableName": "'"$TABLE"'", "Key": {"pk": {"S": "tx"}, "sk": {"N": "2"}}}}]')
check "transact-get-items sees both writes" \
    "$(json_get '[r["Item"]["n"]["N"] for r in d["Responses"]]' <<<"$out")" "['5', '7']"
set +e
err=$(ddb transact-write-items --transact-items '[
  {"ConditionCheck": {"TableName": "'"$TABLE"'", "Key": {"pk": {"S": "tx"}, "sk": {"N": "1"}},
                      "ConditionExpression": "n = :x", "ExpressionAttributeValues": {":x": {"N": "0"}}}},
  {"Delete": {"TableName": "'"$TABLE"'", "Key": {"pk": {"S": "tx"}, "sk": {"N": "2"}}}}]' 2>&1 >/dev/null)
status=$?
set -e
check "a failed condition cancels the transaction" "$([[ $status -ne 0 ]] && echo nonzero || echo zero)" "nonzero"
check "error names TransactionCanceledException and its reasons" \
    "$(grep -q 'TransactionCanceledException.*\[ConditionalCheckFailed, None\]' <<<"$err" && echo yes || echo "no: $err")" "yes"
out=$(ddb execute-statement --statement "SELECT n FROM \"$TABLE\" WHERE pk = 'tx' AND sk = 2")
check "execute-statement reads the cancelled delete's item" "$(json_get 'd["Items"]' <<<"$out")" "[{'n': {'N': '7'}}]"
ddb execute-statement --statement "UPDATE \"$TABLE\" SET n = n + 1 WHERE pk = 'tx' AND sk = ?" \
    --parameters '[{"N": "2"}]' >/dev/null
out=$(ddb get-item --table-name "$TABLE" --key '{"pk": {"S": "tx"}, "sk": {"N": "2"}}' --consistent-read)
check "execute-statement updates with a parameter" "$(json_get 'd["Item"]["n"]["N"]' <<<"$out")" "8"

# DynamoDB Streams and Time to Live through `aws dynamodbstreams` and
# `aws dynamodb`, on the same endpoint.
streams() {
    aws dynamodbstreams --endpoint-url "$ATOLL_ENDPOINT" --region us-east-1 --output json "$@"
}
ddb update-table --table-name "$TABLE" \
    --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES >/dev/null
STREAM_ARN=$(ddb describe-table --table-name "$TABLE" | json_get 'd["Table"]["LatestStreamArn"]')
ddb put-item --table-name "$TABLE" --item '{"pk": {"S": "streamed"}, "sk": {"N": "7"}}'
out=$(streams list-streams --table-name "$TABLE")
check "list-streams lists the stream" "$(json_get 'd["Streams"][0]["StreamArn"]' <<<"$out")" "$STREAM_ARN"
SHARD=$(streams describe-stream --stream-arn "$STREAM_ARN" | json_get 'd["StreamDescription"]["Shards"][0]["ShardId"]')
ITER=$(streams get-shard-iterator --stream-arn "$STREAM_ARN" --shard-id "$SHARD" \
    --shard-iterator-type TRIM_HORIZON | json_get 'd["ShardIterator"]')
out=$(streams get-records --shard-iterator "$ITER")
check "get-records shows the put" \
    "$(json_get '[(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in d["Records"]]' <<<"$out")" \
    "[('INSERT', 'streamed')]"
out=$(ddb update-time-to-live --table-name "$TABLE" \
    --time-to-live-specification Enabled=true,AttributeName=expires)
check "update-time-to-live" "$(json_get 'd["TimeToLiveSpecification"]["AttributeName"]' <<<"$out")" "expires"
out=$(ddb describe-time-to-live --table-name "$TABLE")
check "describe-time-to-live" "$(json_get 'd["TimeToLiveDescription"]["TimeToLiveStatus"]' <<<"$out")" "ENABLED"

ddb delete-table --table-name "$TABLE" >/dev/null
ddb wait table-not-exists --table-name "$TABLE"
set +e
ddb describe-table --table-name "$TABLE" >/dev/null 2>&1
status=$?
set -e
check "deleted table is not found" "$([[ $status -ne 0 ]] && echo nonzero || echo zero)" "nonzero"
trap - EXIT

echo "cli: $PASSED passed, 0 failed"
