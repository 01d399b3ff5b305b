#!/usr/bin/env bash
# The `make demo` tour: a Privacy Mode job end to end on this machine, real
# parts only (docs/agent.md). A plane (simulated TEE, `local` provisioner) is
# started in the background; a provider encrypts and registers a synthetic
# dataset; a consumer rents it, pushes the example algorithm image (built here
# from Debian's busybox-static, cached under build/), and submits
# examples/job.yaml. The local provisioner starts cce-agent in a fresh network
# and mount namespace; the agent attests (SIMULATED TEE), mounts the dataset
# with cce-decryptfs, runs the algorithm in the sandbox (runc, seccomp,
# Landlock, cgroups) and submits the signed output. The Output Gate holds it
# for review (the gate issue completes that step). Then the DecryptFS tamper
# tour (scripts/demo-decryptfs.sh). Exits non-zero if a step misbehaves; it
# also runs as a test.
set -euo pipefail

BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CCE_DEMO_CACHE:-$ROOT/build/example-image-cache}
WORK=$(mktemp -d /tmp/cce-demo-XXXXXX)
DATA="$WORK/plane"
PLANE_PID=
cleanup() {
  local_plane_stop
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
# shellcheck source=lib/local-plane.sh
. "$ROOT/scripts/lib/local-plane.sh"
die() { echo "demo: FAILED: $*" >&2; [ -f "$WORK/plane.log" ] && tail -n 40 "$WORK/plane.log" >&2; exit 1; }

export HOME="$WORK/home"   # the cce client's login lives here, not in your home
mkdir -p "$HOME"
unset CCE_PLANE_URL CCE_TOKEN CCE_CA_FILE

step "1. Start a plane (SIMULATED TEE: no TDX on this machine) with the local provisioner"
local_plane_start || die "the plane did not start"
echo "plane up at $URL (log: plane.log)"
PROVIDER=$(local_plane_user hospital provider)
CONSUMER=$(local_plane_user analyst consumer)
echo "users: hospital (provider), analyst (consumer)"

step "2. Provider: a synthetic claims dataset (deterministic), encrypted and registered"
SRC="$WORK/claims"
mkdir -p "$SRC/2026"
claims_csv 20000 > "$SRC/2026/claims.csv"
run head -n 3 "$SRC/2026/claims.csv"
export CCE_TOKEN="$PROVIDER"
printf '$ cce login --plane %s --token <hospital token> --ca %s\n' "$URL" "$CA" >&2
"$BIN/cce" login --plane "$URL" --token "$PROVIDER" --ca "$CA" > /dev/null
provider_register hospital-claims "$SRC"

step "3. Consumer: rent the dataset, push the algorithm image, submit the job"
export CCE_TOKEN="$CONSUMER"
run "$BIN/cce" rent hospital-claims --days 1
example_image
run "$BIN/cce" image push "$CACHE/claims-stats-oci"
run cat "$ROOT/examples/job.yaml"
JOB=$("$BIN/cce" job submit -f "$ROOT/examples/job.yaml" --output json | json_field id)
echo "job $JOB submitted"

step "4. The plane provisions a sandboxed VM stand-in; the agent attests, mounts, runs, submits"
if ! run "$BIN/cce" job status "$JOB" --watch --until HELD --interval 1; then
  die "job $JOB did not reach HELD"
fi
"$BIN/cce" job status "$JOB" --output json > "$WORK/job.json"
STATE=$(json_field state < "$WORK/job.json")
[ "$STATE" = HELD ] || die "job $JOB ended $STATE, expected HELD"
echo
echo "The agent's steps (from the plane's log):"
grep -o '"step":"[a-z_]*"' "$DATA/logs/jobs/$JOB.log" 2>/dev/null | sed 's/"step":/  /' | tr -d '"' | tr '\n' ' ' || true
echo
echo "What the sandboxed algorithm did (the agent's 'finished' step):"
grep '"step":"finished"' "$DATA/logs/jobs/$JOB.log" || die "no finished step in the agent's log"
echo "The output was submitted, signed by the TEE key, and is sealed in the plane."
echo "The Output Gate is not built yet: it holds every output for review, so the"
echo "consumer cannot download it (the Output Gate issue completes this step)."
if "$BIN/cce" job download "$JOB" --out "$WORK/out" 2>"$WORK/download.err"; then
  die "a HELD output was downloadable"
fi
printf '$ cce job download %s   (refused)\n' "$JOB"
cat "$WORK/download.err"

step "5. DecryptFS on its own: tampering reads as an I/O error"
"$ROOT/scripts/demo-decryptfs.sh" "$BIN"
echo
echo "demo: OK"
