#!/usr/bin/env bash
# Job overhead on the local provisioner (bench/job/README.md): a fresh plane
# (simulated TEE), one dataset, the example image; then N jobs one after
# another whose algorithm is /bin/true, so the algorithm's own time is ~0 and
# the measured time is the platform's: from `cce job submit` returning to the
# job being gated, RELEASED or HELD (attested, keys released, dataset mounted, image fetched and
# unpacked, container run, bundle signed, uploaded and gated), polled every
# 20 ms. Prints p50 / p95 / max. Target: p50 < 2 s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/build/bin
JOBS=20
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN=$(cd "$2" && pwd); shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    -h|--help) echo "usage: bench/job/run.sh [--bin-dir DIR] [--jobs N (default 20)]"; exit 0 ;;
    *) echo "bench/job: unknown option $1" >&2; exit 2 ;;
  esac
done
CACHE=${CCE_DEMO_CACHE:-$ROOT/build/example-image-cache}
WORK=$(mktemp -d /tmp/cce-bench-job-XXXXXX)
trap 'local_plane_stop; rm -rf "$WORK"' EXIT
# shellcheck source=../../scripts/lib/local-plane.sh
. "$ROOT/scripts/lib/local-plane.sh"
export HOME="$WORK/home"
mkdir -p "$HOME"
unset CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE

local_plane_start
PROVIDER=$(local_plane_user provider provider)
CONSUMER=$(local_plane_user consumer consumer)
mkdir -p "$WORK/src"
claims_csv 20000 > "$WORK/src/claims.csv"
"$BIN/cce" login --plane "$URL" --token "$PROVIDER" --ca "$CA" > /dev/null
provider_register bench-claims "$WORK/src" > /dev/null
export CCE_TOKEN="$CONSUMER"
"$BIN/cce" rent bench-claims --days 1 > /dev/null
example_image > /dev/null
"$BIN/cce" image push "$CACHE/claims-stats-oci" > /dev/null
cat > "$WORK/job.yaml" <<YAML
apiVersion: cce4long/v1
kind: PrivacyJob
metadata:
  name: overhead
spec:
  image: demo/claims-stats:1
  command: ["/bin/true"]
  datasets:
    - name: bench-claims
      mountPath: /data/claims
  resources:
    memoryMiB: 256
    timeoutSeconds: 120
YAML

now_ms() { date +%s%3N; }
echo "bench/job: $JOBS jobs, each submit -> RELEASED|HELD (attest, keys, DecryptFS mount, image fetch+unpack, runc, bundle, gate)"
: > "$WORK/times"
for i in $(seq 1 "$JOBS"); do
  start=$(now_ms)
  job=$("$BIN/cce" job submit -f "$WORK/job.yaml")
  while :; do
    state=$("$BIN/cce" job status "$job" --output json | json_field state)
    case "$state" in HELD|RELEASED) break ;; FAILED|CANCELLED)
      echo "bench/job: job $job $state" >&2; "$BIN/cce" job status "$job" >&2; exit 1 ;; esac
    sleep 0.02
  done
  ms=$(( $(now_ms) - start ))
  echo "$ms" >> "$WORK/times"
  printf '  job %2d  %5d ms\n' "$i" "$ms"
done
sort -n "$WORK/times" | awk -v n="$JOBS" '
  { t[NR] = $1 }
  END {
    p50 = t[int((n + 1) / 2)]; p95 = t[int(n * 0.95 + 0.999)]
    printf "bench/job: submit->gated p50 %d ms, p95 %d ms, max %d ms (target p50 < 2000 ms: %s)\n",
      p50, p95, t[n], (p50 < 2000 ? "met" : "NOT met")
  }'
