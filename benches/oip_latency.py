"""Latency of the Open Inference Protocol's infer through `scorer serve`,
beside the same rows through `POST /` (docs/inference-protocol.md, issue 23).

Usage: python benches/oip_latency.py HOST:PORT [REPEATS]

One client, one keep-alive connection, requests one after another; prints
the median and 99th percentile of each, in milliseconds. Run the server and
this client pinned to different cores (`taskset -c 0 scorer serve`,
`taskset -c 1 python ...`), a release build for figures worth quoting.
Standard library only.
"""

import csv
import http.client
import json
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["meanConcavePoints", "worstRadius", "worstTexture", "worstArea", "worstConcavePoints"]
INFER = "/v2/models/breast-cancer-gbc/infer"


def rows():
    with open(ROOT / "tests/golden/dataset.csv", newline="") as f:
        return [[float(r[n]) for n in NAMES] for r in csv.DictReader(f)]


def json_infer(values):
    body = {"inputs": [{"name": "input-0", "shape": [len(values), len(NAMES)], "datatype": "FP64", "data": values}]}
    return json.dumps(body).encode(), {}


def binary_infer(values):
    data = b"".join(struct.pack("<%dd" % len(r), *r) for r in values)
    header = json.dumps({
        "inputs": [{"name": "input-0", "shape": [len(values), len(NAMES)], "datatype": "FP64",
                    "parameters": {"binary_data_size": len(data)}}],
        "parameters": {"binary_data_output": True},
    }).encode()
    return header + data, {"Inference-Header-Content-Length": str(len(header))}


def timed(conn, requests, repeats):
    """Milliseconds per repeat, each repeat sending every (path, body, headers) in turn."""
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path, body, headers in requests:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                sys.exit(f"{path}: {response.status}")
        out.append((time.perf_counter() - started) * 1000)
    out.sort()
    return out[len(out) // 2], out[min(len(out) - 1, int(len(out) * 0.99))]


def main():
    host, port = sys.argv[1].split(":")
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    conn = http.client.HTTPConnection(host, int(port))
    all_rows = rows()
    one = all_rows[:1]
    seed = [("/", json.dumps(dict(zip(NAMES, r))).encode(), {}) for r in all_rows]
    cases = [
        ("N=1    POST / (one observation)", seed[:1], repeats),
        ("N=1    OIP infer, JSON", [(INFER, *json_infer(one))], repeats),
        ("N=1    OIP infer, binary tensors", [(INFER, *binary_infer(one))], repeats),
        ("N=569  POST / x 569 (one request per row)", seed, max(repeats // 20, 10)),
        ("N=569  OIP infer, JSON", [(INFER, *json_infer(all_rows))], max(repeats // 5, 20)),
        ("N=569  OIP infer, binary tensors", [(INFER, *binary_infer(all_rows))], max(repeats // 5, 20)),
    ]
    for what, requests, n in cases:
        timed(conn, requests, 3)  # warm up
        p50, p99 = timed(conn, requests, n)
        print(f"{what:45s} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms   ({n} runs)")


if __name__ == "__main__":
    main()
