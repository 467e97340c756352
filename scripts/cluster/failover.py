"""Failover time of a 3-node Atoll cluster, measured on real processes.

Each run: find the leader of the table's partition, SIGKILL it, and time how
long until a PutItem sent through a surviving node (one attempt per request,
no SDK retries) first succeeds. The killed node is restarted and allowed to
catch up before the next run. Prints each run and the median.

Usage: python failover.py ATOLL_BIN [--runs N] [--dir DIR]
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config


def free_port():
    return random.randint(20000, 60000)


class Node:
    def __init__(self, binary, node_id, api_port, cluster_port, peers, data_dir, log_dir):
        self.binary = binary
        self.node_id = node_id
        self.api = f"127.0.0.{node_id}:{api_port}"
        self.args = [
            binary, "serve", "--node-id", str(node_id), "--listen", self.api,
            "--cluster-listen", f"127.0.0.{node_id}:{cluster_port}", "--peers", peers,
            "--data-dir", os.path.join(data_dir, f"node-{node_id}"),
            "--partition-split-ops", "0",
        ]
        self.log_path = os.path.join(log_dir, f"node-{node_id}.log")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=log)

    def wait_serving(self, timeout_s=60):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if line.startswith("atoll: listening on "):
                return
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"node {self.node_id} exited; see {self.log_path}")
        raise RuntimeError(f"node {self.node_id} did not serve in {timeout_s} s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def client(endpoint):
    return boto3.client(
        "dynamodb", endpoint_url=f"http://{endpoint}", region_name="us-east-1",
        aws_access_key_id="failover", aws_secret_access_key="failover",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=3),
    )


def admin(endpoint):
    with urllib.request.urlopen(f"http://{endpoint}/atoll/admin", timeout=5) as reply:
        return json.load(reply)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir")
    args = parser.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="atoll-failover-")
    os.makedirs(work, exist_ok=True)
    api_port, cluster_port = free_port(), free_port()
    peers = ",".join(f"{i}=127.0.0.{i}:{cluster_port}" for i in (1, 2, 3))
    nodes = {i: Node(args.binary, i, api_port, cluster_port, peers, work, work) for i in (1, 2, 3)}
    try:
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            node.wait_serving()
        client(nodes[1].api).create_table(
            TableName="failover",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        times = []
        for run in range(args.runs):
            partition = admin(nodes[1].api)["tables"][0]["partitions"][0]
            leader = partition["leader"]
            survivor = next(n for i, n in nodes.items() if i != leader)
            writer = client(survivor.api)
            writer.put_item(TableName="failover", Item={"pk": {"S": "warm"}})
            nodes[leader].kill()
            killed_at = time.monotonic()
            attempts = 0
            while True:
                attempts += 1
                try:
                    writer.put_item(TableName="failover", Item={"pk": {"S": f"run{run}"}})
                    break
                except Exception:
                    if time.monotonic() - killed_at > 60:
                        raise
            took = time.monotonic() - killed_at
            times.append(took)
            print(f"run {run}: killed leader node {leader}; first write through node "
                  f"{survivor.node_id} succeeded after {took * 1000:.0f} ms ({attempts} attempts)")
            nodes[leader].start()
            nodes[leader].wait_serving()
            time.sleep(2)
        print(f"failover median over {len(times)} runs: {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")
    finally:
        for node in nodes.values():
            node.stop()


if __name__ == "__main__":
    sys.exit(main())
