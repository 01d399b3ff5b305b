#!/usr/bin/env bash
# Privacy Plane submission benchmark: a fresh plane in a scratch directory
# (provider dataset, consumer rental, pushed image), `cce-plane serve` on a
# loopback port, then plane_bench: C concurrent HTTPS keep-alive clients
# submitting valid jobs, then reading them back, then a breakdown of where a
# request's time goes, then the p99 of an authenticated GET while 1000
# slowloris connections are held. README.md beside this file says what is
# measured.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO_ROOT

BIN_DIR=$REPO_ROOT/build/bin
CLIENTS=16
DURATION=10
READ_SECONDS=5
BREAKDOWN_SECONDS=3
PROVISIONER=none
HTTP_THREADS=
KILL_CHECK=0
SLOWLORIS=1000
SLOWLORIS_SECONDS=15
WORK_PARENT=/var/tmp

usage() {
  cat <<EOF
Usage: bench/plane/run.sh [options]

Submissions/s and latency of POST /api/v1/jobs against a fresh cce-plane over
HTTPS keep-alive, GET /api/v1/jobs/{id} reads/s, and a breakdown (TLS+HTTP
alone, + token auth, a new TLS connection per request), then GET
/api/v1/whoami p99 with no slow connections and with N slowloris connections
held. Targets: >= 1000 submissions/s with p99 < 50 ms; whoami p99 < 100 ms
with 1000 slow connections held.

Options:
  --clients C            concurrent HTTPS keep-alive clients (default $CLIENTS)
  --seconds D            seconds of submissions (default $DURATION)
  --read-seconds R       seconds of GET /api/v1/jobs/{id} (default $READ_SECONDS; 0: skip)
  --breakdown-seconds B  seconds per breakdown row (default $BREAKDOWN_SECONDS; 0: skip)
  --provisioner P        none (default: jobs stop at PROVISIONING, the submission
                         path alone) or fake (the engine walks each job to HELD
                         while the submissions run)
  --http-threads N       the plane's limits.http_threads (default: plane.yaml's)
  --slowloris N          slow connections held in the last phase (default $SLOWLORIS;
                         0: skip it)
  --slowloris-seconds S  seconds of whoami without and then with them (default
                         $SLOWLORIS_SECONDS; over the plane's 10 s header timeout, so
                         the window includes the server closing them and the
                         bench re-opening them)
  --kill-check           afterwards, kill -9 the plane in the middle of a 4 s
                         submission run, restart it and check that every
                         acknowledged job is still there
  --bin-dir DIR          cce, cce-plane and plane_bench (default build/bin)
  --work-dir DIR         where the scratch plane is made (default $WORK_PARENT;
                         a real disk: the plane fsyncs every commit)
  --help                 this text
EOF
}

die() {
  echo "run.sh: error: $*" >&2
  exit 1
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --clients) CLIENTS=${2:?}; shift 2 ;;
    --seconds) DURATION=${2:?}; shift 2 ;;
    --read-seconds) READ_SECONDS=${2:?}; shift 2 ;;
    --breakdown-seconds) BREAKDOWN_SECONDS=${2:?}; shift 2 ;;
    --provisioner) PROVISIONER=${2:?}; shift 2 ;;
    --http-threads) HTTP_THREADS=${2:?}; shift 2 ;;
    --kill-check) KILL_CHECK=1; shift ;;
    --slowloris) SLOWLORIS=${2:?}; shift 2 ;;
    --slowloris-seconds) SLOWLORIS_SECONDS=${2:?}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?}; shift 2 ;;
    --work-dir) WORK_PARENT=${2:?}; shift 2 ;;
    --help | -h) usage; exit 0 ;;
    *) usage >&2; die "unknown option '$1'" ;;
  esac
done
[[ $PROVISIONER == none || $PROVISIONER == fake ]] || die "--provisioner: expected none or fake"
[[ $SLOWLORIS =~ ^[0-9]+$ ]] || die "--slowloris: expected a number of connections"
for b in cce cce-plane plane_bench; do
  [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b not found (make build, or --bin-dir)"
done
command -v python3 >/dev/null || die "python3 is needed to build the test image"
BIN_DIR=$(cd "$BIN_DIR" && pwd)

WORK=$(mktemp -d "$WORK_PARENT/cce-bench-plane-XXXXXX")
SERVER_PID=
cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The CLI's login config goes to a private HOME, never the caller's.
export HOME=$WORK/home
unset XDG_CONFIG_HOME CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE
mkdir -p "$HOME"
step() { echo "[bench/plane] $*" >&2; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=https://127.0.0.1:$PORT
DATA=$WORK/plane

step "init plane in $DATA (provisioner: $PROVISIONER)"
"$BIN_DIR/cce-plane" init --data-dir "$DATA" --listen "127.0.0.1:$PORT" --output json >"$WORK/init.json"
OP_TOKEN=$(json_field token <"$WORK/init.json")
CA=$(json_field ca_file <"$WORK/init.json")
python3 - "$DATA/plane.yaml" "$PROVISIONER" "$HTTP_THREADS" "$WORK" <<'EOF'
import re, sys
path, provisioner, threads, work = sys.argv[1:5]
text = open(path).read()
text, n = re.subn(r"(provisioner:\n  backend:) none", r"\1 " + provisioner, text)
if n != 1:
    sys.exit("plane.yaml: no 'provisioner: backend: none' to replace")
if threads:
    text, n = re.subn(r"(http_threads:) \d+", r"\1 " + threads, text)
    if n != 1:
        sys.exit("plane.yaml: no limits.http_threads to replace")
text, n = re.subn(r"(\n  allowed_roots:) \[[^\n]*\]", r'\1 ["%s"]' % work, text)  # claims.enc is there
if n != 1:
    sys.exit("plane.yaml: no datasets.allowed_roots to replace")
open(path, "w").write(text)
EOF

# The plane holds a descriptor per connection (the slowloris phase alone
# holds about $SLOWLORIS); a soft limit of 1024 would cap it, not the server's
# own limits. Raised to the hard limit for the plane (and plane_bench).
FD_HARD=$(ulimit -Hn)
[[ $FD_HARD == unlimited ]] && FD_HARD=1048576
ulimit -n "$FD_HARD" 2>/dev/null || step "warning: cannot raise the fd limit to $FD_HARD (it stays $(ulimit -n))"
PER_ADDRESS_CAP=$(sed -n 's/^ *max_connections_per_address: *\([0-9]*\).*/\1/p' "$DATA/plane.yaml")
# Every slow connection and client comes from 127.0.0.1.
if (( SLOWLORIS + CLIENTS + 8 > PER_ADDRESS_CAP )); then
  die "--slowloris $SLOWLORIS: over the plane's limits.max_connections_per_address ($PER_ADDRESS_CAP) from one address"
fi

start_server() {
  "$BIN_DIR/cce-plane" serve --data-dir "$DATA" 2>>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 400); do
    if "$BIN_DIR/cce" login --plane "$URL" --token "$OP_TOKEN" --ca "$CA" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.025
  done
  tail -20 "$WORK/server.log" >&2
  die "cce-plane serve did not come up"
}
start_server

step "provider registers a dataset, consumer rents it and pushes an image"
user_add() {
  "$BIN_DIR/cce-plane" user add --data-dir "$DATA" --role "$2" "$1" --output json | json_field token
}
PROVIDER_TOKEN=$(user_add pat provider)
CONSUMER_TOKEN=$(user_add carol consumer)
mkdir -p "$WORK/src"
printf 'id,cost\n1,10\n2,20\n' >"$WORK/src/claims.csv"
"$BIN_DIR/cce" key generate --out "$WORK/claims.key" >/dev/null
"$BIN_DIR/cce" dataset encrypt --key "$WORK/claims.key" "$WORK/src" "$WORK/claims.enc" >/dev/null
"$BIN_DIR/cce" login --plane "$URL" --token "$PROVIDER_TOKEN" --ca "$CA" >/dev/null
"$BIN_DIR/cce" dataset register claims --key "$WORK/claims.key" \
  --location "file://$WORK/claims.enc" --max-days 30 >/dev/null
"$BIN_DIR/cce" login --plane "$URL" --token "$CONSUMER_TOKEN" --ca "$CA" >/dev/null
"$BIN_DIR/cce" rent claims --days 7 >/dev/null
# A one-layer OCI layout (the layer: a tar of one small file).
python3 - "$WORK/oci" <<'EOF'
import hashlib, io, json, os, sys, tarfile
out = sys.argv[1]
def put(data):
    d = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    body = b"#!/bin/sh\necho bench\n"
    info = tarfile.TarInfo("bin/tool"); info.size = len(body); info.mode = 0o755
    tar.addfile(info, io.BytesIO(body))
layer = buf.getvalue()
layer_d = put(layer)
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/tool"]},
                     "rootfs": {"type": "layers", "diff_ids": [layer_d["digest"]]}}).encode()
config_d = put(config)
manifest = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_d},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_d}]}).encode()
manifest_d = put(manifest)
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_d,
                        "annotations": {"org.opencontainers.image.ref.name": "bench/tool:1.0"}}]}
open(f"{out}/index.json", "w").write(json.dumps(index))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
EOF
"$BIN_DIR/cce" image push "$WORK/oci" >/dev/null

step "plane_bench: $CLIENTS clients, ${DURATION}s submissions, ${READ_SECONDS}s reads, $SLOWLORIS slow connections"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews every figure)"
echo "provisioner: $PROVISIONER ($( [[ $PROVISIONER == none ]] && echo 'jobs stop at PROVISIONING: the submission path' || echo 'the engine walks every job to HELD during the run'))"
echo "http_threads: $(sed -n 's/^ *http_threads: *\([0-9]*\).*/\1/p' "$DATA/plane.yaml"), max_connections_per_address: $PER_ADDRESS_CAP, fd limit: $(ulimit -n)"
"$BIN_DIR/plane_bench" submit --url "$URL" --ca "$CA" --token "$CONSUMER_TOKEN" \
  --image bench/tool:1.0 --dataset claims --clients "$CLIENTS" --seconds "$DURATION" \
  --read-seconds "$READ_SECONDS" --breakdown-seconds "$BREAKDOWN_SECONDS" \
  --server-pid "$SERVER_PID" --key-prefix run1 \
  --slowloris "$SLOWLORIS" --slowloris-seconds "$SLOWLORIS_SECONDS" --metrics-token "$OP_TOKEN"
JOBS_BY_STATE=$(sqlite3 -readonly "$DATA/plane.db" \
  "SELECT group_concat(state || '=' || n, ', ') FROM (SELECT state, count(*) AS n FROM jobs GROUP BY state)" \
  2>/dev/null) || JOBS_BY_STATE="(sqlite3 could not read the database)"
echo "jobs by state after the run: $JOBS_BY_STATE"

if [[ $KILL_CHECK == 1 ]]; then
  step "kill-check: kill -9 the plane 2 s into a 4 s submission run, restart, look for every acknowledged job"
  "$BIN_DIR/plane_bench" submit --url "$URL" --ca "$CA" --token "$CONSUMER_TOKEN" \
    --image bench/tool:1.0 --dataset claims --clients "$CLIENTS" --seconds 4 --read-seconds 0 \
    --key-prefix killcheck --ids-out "$WORK/acked.txt" >"$WORK/killcheck.txt" &
  BENCH_PID=$!
  sleep 2
  kill -KILL "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  wait "$BENCH_PID" || die "plane_bench failed during the kill-check"
  grep '^POST' "$WORK/killcheck.txt" | sed 's/^/  (until and after the kill) /'
  start_server
  "$BIN_DIR/plane_bench" verify --url "$URL" --ca "$CA" --token "$CONSUMER_TOKEN" \
    --ids "$WORK/acked.txt" || die "acknowledged jobs were lost across kill -9"
fi
