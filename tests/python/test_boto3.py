"""End-to-end tests of a running atoll server through boto3.

Usage: ATOLL_ENDPOINT=http://127.0.0.1:PORT python -m unittest tests/python/test_boto3.py
"""

import http.client
import json
import os
import unittest
import urllib.parse
import uuid
import zlib

import boto3
import botocore.config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("ATOLL_ENDPOINT")


def client():
    return boto3.client(
        "dynamodb",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="AKIDATOLLPYTHON",
        aws_secret_access_key="atoll-python-secret",
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def raw_post(target, body, headers=None):
    """POST / with a hand-made body; returns (status, headers, body bytes).

    The signature is a dummy: malformed bodies and unknown targets are refused
    before authentication."""
    url = urllib.parse.urlparse(ENDPOINT)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=15)
    all_headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDATOLLPYTHON/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00",
        "X-Amz-Date": "20260101T000000Z",
    }
    if target is not None:
        all_headers["X-Amz-Target"] = target
    all_headers.update(headers or {})
    conn.request("POST", "/", body=body, headers=all_headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    # resp.headers looks names up case-insensitively.
    return resp.status, resp.headers, data


@unittest.skipUnless(ENDPOINT, "set ATOLL_ENDPOINT to a running atoll server")
class Boto3EndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ddb = client()
        cls.table = unique("py-items")
        cls.ddb.create_table(
            TableName=cls.table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        cls.ddb.get_waiter("table_exists").wait(
            TableName=cls.table, WaiterConfig={"Delay": 1, "MaxAttempts": 20}
        )

    @classmethod
    def tearDownClass(cls):
        cls.ddb.delete_table(TableName=cls.table)

    def assert_client_error(self, call, code, message=None, **kwargs):
        with self.assertRaises(ClientError) as ctx:
            call(**kwargs)
        err = ctx.exception.response["Error"]
        self.assertEqual(err["Code"], code, err)
        if message is not None:
            self.assertEqual(err["Message"], message)
        self.assertEqual(ctx.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        return err

    def test_table_lifecycle(self):
        name = unique("py-life")
        created = self.ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "B"}],
            ProvisionedThroughput={"ReadCapacityUnits": 2, "WriteCapacityUnits": 3},
        )["TableDescription"]
        self.assertEqual(created["TableName"], name)
        self.assertEqual(created["TableArn"], f"arn:aws:dynamodb:us-east-1:123456789012:table/{name}")
        self.ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        desc = self.ddb.describe_table(TableName=name)["Table"]
        self.assertEqual(desc["TableStatus"], "ACTIVE")
        self.assertEqual(desc["ProvisionedThroughput"]["ReadCapacityUnits"], 2)
        self.assertEqual(desc["ProvisionedThroughput"]["WriteCapacityUnits"], 3)
        self.assertIn(name, self.ddb.list_tables()["TableNames"])
        self.assert_client_error(
            self.ddb.create_table,
            "ResourceInUseException",
            f"Table already exists: {name}",
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "B"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.delete_table(TableName=name)
        self.ddb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        self.assert_client_error(
            self.ddb.describe_table,
            "ResourceNotFoundException",
            f"Requested resource not found: Table: {name} not found",
            TableName=name,
        )

    def test_list_tables_paginator(self):
        names = [unique("py-page") for _ in range(3)]
        for name in names:
            self.ddb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        try:
            pages = list(self.ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 1}))
            listed = [n for page in pages for n in page["TableNames"]]
            self.assertTrue(all(len(page["TableNames"]) <= 1 for page in pages))
            self.assertEqual(listed, sorted(listed))
            for name in names:
                self.assertIn(name, listed)
        finally:
            for name in names:
                self.ddb.delete_table(TableName=name)

    def test_put_get_delete_round_trip(self):
        item = {
            "pk": {"S": "round-trip"},
            "sk": {"N": "1"},
            "s": {"S": "héllo"},
            "empty": {"S": ""},
            "n": {"N": "1.50"},
            "b": {"B": b"\x00\x01\xff"},
            "bool": {"BOOL": True},
            "null": {"NULL": True},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2"]},
            "bs": {"BS": [b"x", b"y"]},
            "l": {"L": [{"S": "x"}, {"N": "2"}, {"L": []}]},
            "m": {"M": {"inner": {"M": {"deep": {"BOOL": False}}}}},
        }
        self.assertNotIn("Attributes", self.ddb.put_item(TableName=self.table, Item=item))
        got = self.ddb.get_item(
            TableName=self.table, Key={"pk": {"S": "round-trip"}, "sk": {"N": "1"}}, ConsistentRead=True
        )["Item"]
        expected = dict(item, n={"N": "1.5"})
        for name in ("ss", "ns", "bs"):
            kind = next(iter(got[name]))
            got[name] = {kind: sorted(got[name][kind])}
            expected[name] = {kind: sorted(expected[name][kind])}
        self.assertEqual(got, expected)

        old = self.ddb.delete_item(
            TableName=self.table,
            Key={"pk": {"S": "round-trip"}, "sk": {"N": "1.0"}},
            ReturnValues="ALL_OLD",
        )["Attributes"]
        self.assertEqual(old["s"], {"S": "héllo"})
        resp = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": "round-trip"}, "sk": {"N": "1"}})
        self.assertNotIn("Item", resp)

    def test_batch_write_and_batch_get(self):
        other = unique("py-batch")
        self.ddb.create_table(
            TableName=other,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.ddb.get_waiter("table_exists").wait(TableName=other, WaiterConfig={"Delay": 1, "MaxAttempts": 20})
        try:
            self.ddb.put_item(TableName=other, Item={"id": {"S": "old"}})
            resp = self.ddb.batch_write_item(
                RequestItems={
                    self.table: [
                        {"PutRequest": {"Item": {"pk": {"S": "batch"}, "sk": {"N": str(i)}, "v": {"S": f"v{i}"}}}}
                        for i in range(20)
                    ],
                    other: [
                        {"PutRequest": {"Item": {"id": {"S": "new"}}}},
                        {"DeleteRequest": {"Key": {"id": {"S": "old"}}}},
                    ],
                }
            )
            self.assertEqual(resp["UnprocessedItems"], {})
            resp = self.ddb.batch_get_item(
                RequestItems={
                    self.table: {"Keys": [{"pk": {"S": "batch"}, "sk": {"N": str(i)}} for i in range(0, 25, 2)]},
                    other: {"Keys": [{"id": {"S": "new"}}, {"id": {"S": "old"}}], "ConsistentRead": True},
                }
            )
            self.assertEqual(resp["UnprocessedKeys"], {})
            got = sorted(int(i["sk"]["N"]) for i in resp["Responses"][self.table])
            self.assertEqual(got, list(range(0, 20, 2)))
            self.assertEqual(resp["Responses"][other], [{"id": {"S": "new"}}])
            self.assert_client_error(
                self.ddb.batch_write_item,
                "ValidationException",
                "Provided list of item keys contains duplicates",
                RequestItems={other: [{"PutRequest": {"Item": {"id": {"S": "d"}}}}] * 2},
            )
        finally:
            self.ddb.delete_table(TableName=other)

    def test_wrong_key_type_is_a_validation_error(self):
        self.assert_client_error(
            self.ddb.put_item,
            "ValidationException",
            "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N",
            TableName=self.table,
            Item={"pk": {"N": "1"}, "sk": {"N": "1"}},
        )
        self.assert_client_error(
            self.ddb.get_item,
            "ValidationException",
            "The provided key element does not match the schema",
            TableName=self.table,
            Key={"pk": {"S": "a"}},
        )

    def test_item_too_large(self):
        # pk(2)+"big"(3) + sk(2)+N 1(2) + data(4) + value: 409,601 bytes in all.
        big = "x" * (409_601 - 13)
        self.assert_client_error(
            self.ddb.put_item,
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
            TableName=self.table,
            Item={"pk": {"S": "big"}, "sk": {"N": "1"}, "data": {"S": big}},
        )
        self.ddb.put_item(TableName=self.table, Item={"pk": {"S": "big"}, "sk": {"N": "1"}, "data": {"S": big[1:]}})

    def test_compressed_requests(self):
        """boto3 compresses request bodies where the service model says so;
        turned on here for every operation, from the first byte."""
        config = botocore.config.Config(
            retries={"max_attempts": 1, "mode": "standard"},
            request_min_compression_size_bytes=1,
        )
        # A session of its own: the service model edited below is shared by
        # every client of a session.
        squeezed = boto3.session.Session().client(
            "dynamodb",
            endpoint_url=ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id="AKIDATOLLPYTHON",
            aws_secret_access_key="atoll-python-secret",
            config=config,
        )
        model = squeezed.meta.service_model._service_description["operations"]
        for operation in model.values():
            operation["requestcompression"] = {"encodings": ["gzip"]}
        sent = []
        squeezed.meta.events.register(
            "before-send.dynamodb.*",
            lambda request, **_: sent.append(request.headers.get("Content-Encoding")),
        )
        key = {"pk": {"S": unique("gz")}, "sk": {"N": "1"}}
        item = dict(key, long={"S": "x" * 20000})
        squeezed.put_item(TableName=self.table, Item=item)
        got = squeezed.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        self.assertEqual(got["Item"], item)
        self.assertIn("gzip", [h.decode() if isinstance(h, bytes) else h for h in sent])


@unittest.skipUnless(ENDPOINT, "set ATOLL_ENDPOINT to a running atoll server")
class Boto3Errors(unittest.TestCase):
    """Errors that need no table of their own."""

    def test_missing_table(self):
        with self.assertRaises(ClientError) as ctx:
            client().get_item(TableName=unique("py-missing"), Key={"pk": {"S": "a"}})
        err = ctx.exception.response["Error"]
        self.assertEqual((err["Code"], err["Message"]), ("ResourceNotFoundException", "Requested resource not found"))
        with self.assertRaises(client().exceptions.ResourceNotFoundException):
            client().describe_table(TableName=unique("py-missing"))

    def test_malformed_json_is_a_serialization_exception(self):
        status, headers, body = raw_post("DynamoDB_20120810.ListTables", b"{not json")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), {"__type": "com.amazon.coral.service#SerializationException"})
        self.assertTrue(headers.get("x-amzn-RequestId"), dict(headers))
        self.assertEqual(headers.get("x-amz-crc32"), str(zlib.crc32(body)))

    def test_unknown_operation(self):
        status, _, body = raw_post("DynamoDB_20120810.NoSuchOperation", b"{}")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), {"__type": "com.amazon.coral.service#UnknownOperationException"})


if __name__ == "__main__":
    unittest.main()
