-- wrk script: PutItem of a 1 KB item under a random key (see docs/performance.md).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-amz-json-1.0"
wrk.headers["X-Amz-Date"] = "20260101T000000Z"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
wrk.headers["X-Amz-Target"] = "DynamoDB_20120810.PutItem"
local payload = string.rep("x", 1000)
request = function()
  local body = '{"TableName":"bench","Item":{"pk":{"S":"k' .. math.random(1, 100000) .. '"},"v":{"S":"' .. payload .. '"}}}'
  return wrk.format(nil, nil, nil, body)
end
