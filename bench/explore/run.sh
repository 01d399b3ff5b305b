#!/usr/bin/env bash
# Desensitizer throughput (bench/explore/README.md): `cce dataset sample` on a
# large synthetic claims CSV with the demo's policy (examples/sample-policy.yaml:
# 10 % sample, keyed hash, generalization, k-anonymity with l-diversity: two
# passes over the data), and with a one-pass policy (sampling and column
# actions only), against baselines measured in the same run on the same file:
# `cat FILE > /dev/null` and `sha256sum FILE`. MB/s are source bytes per
# second of wall time, best of 3. Target: >= 100 MB/s end to end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/build/bin
MB=100
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN=$(cd "$2" && pwd); shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    -h|--help) echo "usage: bench/explore/run.sh [--bin-dir DIR] [--mb N (CSV size, default 100)]"; exit 0 ;;
    *) echo "bench/explore: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$BIN/cce" ] || { echo "bench/explore: $BIN/cce not found (build it first)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/cce-bench-explore-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/src"
# The demo's claims rows (scripts/lib/local-plane.sh claims_csv), scaled up.
/usr/bin/python3 - "$WORK/src/claims.csv" "$MB" <<'PYEOF'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
target = mb * 1000 * 1000
with open(path, "w") as f:
    f.write("patient_id,age,zip,diagnosis,cost\n")
    size, i, chunk = 0, 0, []
    while size < target:
        i += 1
        line = f"P{100000 + i},{20 + i % 60},{10000 + (i * 37) % 900},ICD-{i % 97},{i * 13 % 5000}.00\n"
        chunk.append(line)
        size += len(line)
        if len(chunk) == 100000:
            f.write("".join(chunk)); chunk = []
    f.write("".join(chunk))
PYEOF
cp "$ROOT/examples/sample-policy.yaml" "$WORK/policy.yaml"
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/sample.key")
cat > "$WORK/onepass.yaml" <<'YAML'
seed: 42
rows: {rate: 0.1}
secret_file: sample.key
columns:
  patient_id: {action: hash}
  age: {action: generalize, bands: [0, 18, 30, 45, 65, 120]}
  zip: {action: generalize, prefix: 3}
  diagnosis: {action: keep}
  cost: {action: generalize, width: 500}
YAML
SIZE=$(stat -c %s "$WORK/src/claims.csv")
best() {  # best wall time of 3 runs of "$@", in seconds
  local b=""
  for _ in 1 2 3; do
    rm -rf "$WORK/out"
    local s e
    s=$(date +%s.%N)
    "$@" > /dev/null
    e=$(date +%s.%N)
    b=$(echo "$s $e ${b:-999999}" | awk '{t = $2 - $1; print (t < $3 ? t : $3)}')
  done
  echo "$b"
}
CAT=$(best sh -c "cat '$WORK/src/claims.csv' > /dev/null")
SHA=$(best sha256sum "$WORK/src/claims.csv")
TWO=$(best "$BIN/cce" dataset sample "$WORK/src" --policy "$WORK/policy.yaml" --out "$WORK/out")
ONE=$(best "$BIN/cce" dataset sample "$WORK/src" --policy "$WORK/onepass.yaml" --out "$WORK/out")
rm -rf "$WORK/out"
"$BIN/cce" dataset sample "$WORK/src" --policy "$WORK/policy.yaml" --out "$WORK/out" \
  --output json > "$WORK/report.json"
/usr/bin/python3 - "$SIZE" "$CAT" "$SHA" "$TWO" "$ONE" "$WORK/report.json" "$BIN" <<'PYEOF'
import json, sys
size = int(sys.argv[1]); cat, sha, two, one = map(float, sys.argv[2:6])
rep = json.load(open(sys.argv[6]))
mbs = lambda s: size / s / 1e6
print(f"== desensitizer throughput on a {size / 1e6:.0f} MB claims CSV ({rep['rows_in']} rows)")
print(f"cat > /dev/null baseline:       {mbs(cat):8.1f} MB/s")
print(f"sha256sum baseline:             {mbs(sha):8.1f} MB/s")
for name, t in (("cce dataset sample (demo policy, 2 passes)", two), ("cce dataset sample (one pass)", one)):
    print(f"{name}: {mbs(t):8.1f} MB/s  (ratio to sha256sum {sha / t:.2f}, to cat {cat / t:.2f}; "
          f"target >= 100 MB/s: {'met' if mbs(t) >= 100 else 'MISSED'})")
print(f"demo policy: {rep['rows_out']} rows out, k achieved {rep['k_anonymity']['k_achieved']}, "
      f"{rep['rows_suppressed']} suppressed")
print(json.dumps({"bench": "explore", "bin_dir": sys.argv[7], "csv_bytes": size,
                  "two_pass_mb_s": mbs(two), "one_pass_mb_s": mbs(one),
                  "baseline_cat_mb_s": mbs(cat), "baseline_sha256_mb_s": mbs(sha)}))
PYEOF
