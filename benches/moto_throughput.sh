#!/usr/bin/env bash
# End-to-end throughput through moto server (S3 and SQS), measured (not a test).
#  1. A generated CSV of S3_ROWS rows (default 1M) through the S3 path: the
#     release binary handles an S3 event (`scorer invoke`) against moto:
#     GetObject streamed -> pipeline -> multipart upload. rows/s, peak RSS.
#  2. The worker draining a queue pre-filled with MESSAGES (default 100,000)
#     single-observation messages: messages/s, peak RSS.
# moto is single-process Python: it is the bottleneck, not the service.
set -euo pipefail
cd "$(dirname "$0")/.."
S3_ROWS=${S3_ROWS:-1000000}
MESSAGES=${MESSAGES:-100000}
dir=${BENCH_DIR:-target/bench-data}
mkdir -p "$dir"
venv=target/test-tools/moto
if ! cmp -s .ci/requirements-moto.txt "$venv/requirements.txt" 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q -r .ci/requirements-moto.txt && cp .ci/requirements-moto.txt "$venv/requirements.txt"
fi
cargo build --release --quiet --bin scorer --example generate_csv

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export LOG_LEVEL=warn

py() { "$venv/bin/python" - "$@"; }

echo "== S3 path: $S3_ROWS rows"
file="$dir/rows-$S3_ROWS.csv"
[[ -s $file ]] || target/release/examples/generate_csv "$S3_ROWS" >"$file"
py "$file" <<'PY'
import sys, boto3
s3 = boto3.client("s3")
s3.create_bucket(Bucket="bench")
# One PutObject: moto gives multipart uploads a checksum that the SDK's
# response validation rejects as a full-object CRC (real S3 marks it COMPOSITE).
with open(sys.argv[1], "rb") as f:
    s3.put_object(Bucket="bench", Key="incoming/big.csv", Body=f)
PY
cat >"$dir/s3-event.json" <<JSON
{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"bench"},"object":{"key":"incoming/big.csv"}}}]}
JSON
/usr/bin/time -f "%e %M" -o "$dir/time.txt" target/release/scorer invoke "$dir/s3-event.json" >"$dir/s3-reply.json"
read -r secs rss <"$dir/time.txt"
awk -v r="$S3_ROWS" -v s="$secs" -v m="$rss" 'BEGIN { printf "  %.2f s, %.0f rows/s, peak RSS %.1f MB\n", s, r / s, m / 1024 }'
grep -o '"rows": [0-9]*' "$dir/s3-reply.json" | head -1

echo "== worker: $MESSAGES messages"
queue=$(py "$MESSAGES" <<'PY'
import sys, json, boto3
sqs = boto3.client("sqs")
url = sqs.create_queue(QueueName="bench-lab")["QueueUrl"]
n = int(sys.argv[1])
body = {"meanConcavePoints": 0.05, "worstRadius": 15.0, "worstTexture": 20.0, "worstArea": 700.0, "worstConcavePoints": 0.1}
for start in range(0, n, 10):
    entries = [{"Id": str(i), "MessageBody": json.dumps(dict(body, id=f"m{start + i}"))} for i in range(min(10, n - start))]
    sqs.send_message_batch(QueueUrl=url, Entries=entries)
print(url)
PY
)
OUTPUT_BUCKET=bench /usr/bin/time -f "%e %M" -o "$dir/time.txt" \
    target/release/scorer worker --queue-url "$queue" --wait-seconds 1 --max-empty-receives 2 --concurrency 4 >/dev/null 2>"$dir/worker.log"
read -r secs rss <"$dir/time.txt"
awk -v n="$MESSAGES" -v s="$secs" -v m="$rss" 'BEGIN { printf "  %.1f s, %.0f messages/s, peak RSS %.1f MB\n", s, n / s, m / 1024 }'
py "$queue" <<'PY'
import sys, boto3
a = boto3.client("sqs").get_queue_attributes(QueueUrl=sys.argv[1], AttributeNames=["All"])["Attributes"]
print("  left in queue:", a["ApproximateNumberOfMessages"], "in flight:", a["ApproximateNumberOfMessagesNotVisible"])
PY
