#!/usr/bin/env bash
# Output Gate figures (bench/gate/README.md): the evaluation corpus's detection
# and false-hold rates (tests/gate-corpus), and the scan throughput on a large
# benign CSV output against a baseline measured in the same run: sha256sum
# reading the same file (one pass over the bytes, no parsing). Target:
# >= 95 % of malicious outputs held, <= 5 % of benign ones, >= 200 MB/s.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$ROOT/build/bin
MB=100
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN=$(cd "$2" && pwd); shift 2 ;;
    --mb) MB=$2; shift 2 ;;
    -h|--help) echo "usage: bench/gate/run.sh [--bin-dir DIR] [--mb N (CSV size, default 100)]"; exit 0 ;;
    *) echo "bench/gate: unknown option $1" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/cce-bench-gate-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PY=/usr/bin/python3

echo "== corpus (tests/gate-corpus)"
MPLCONFIGDIR="$WORK/mpl" "$PY" "$ROOT/tests/gate-corpus/generate.py" "$WORK/corpus" >/dev/null
"$PY" "$ROOT/tests/gate-corpus/run_corpus.py" --cce "$BIN/cce" --corpus "$WORK/corpus" \
  --json "$WORK/corpus.json" | tail -n 3 || true

echo "== throughput: one ${MB} MB benign CSV output"
mkdir -p "$WORK/out"
"$PY" "$ROOT/tests/gate-corpus/generate.py" --big-csv "$WORK/out/stats.csv" "$MB"
"$PY" - "$WORK/out" "$WORK/corpus.json" "$BIN" <<'PYEOF'
import json, os, subprocess, sys, time
out, corpus, bindir = sys.argv[1], sys.argv[2], sys.argv[3]
path = os.path.join(out, "stats.csv")
size = os.path.getsize(path)
def best(cmd):
    times = []
    for _ in range(3):
        s = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - s)
    return min(times), p
base, _ = best(["sha256sum", path])
gate, p = best([os.path.join(bindir, "cce"), "gate", "scan", out, "--output", "json"])
verdict = json.loads(p.stdout)["verdict"]
mbs = lambda s: size / s / 1e6
c = json.load(open(corpus))
print(f"sha256sum baseline: {mbs(base):8.1f} MB/s")
print(f"cce gate scan:      {mbs(gate):8.1f} MB/s  (ratio to baseline {base / gate:.2f}; verdict {verdict}; "
      f"target >= 200 MB/s: {'met' if mbs(gate) >= 200 else 'MISSED'})")
print(f"detection rate:     {c['detection_rate']:.1%} of {c['malicious']} malicious held "
      f"(target >= 95 %: {'met' if c['detection_rate'] >= 0.95 else 'MISSED'})")
print(f"false-hold rate:    {c['false_hold_rate']:.1%} of {c['benign']} benign held "
      f"(target <= 5 %: {'met' if c['false_hold_rate'] <= 0.05 else 'MISSED'})")
print(json.dumps({"bench": "gate", "bin_dir": bindir, "csv_bytes": size, "gate_mb_s": mbs(gate),
                  "baseline_sha256_mb_s": mbs(base), "detection_rate": c["detection_rate"],
                  "false_hold_rate": c["false_hold_rate"], "wrong": c["wrong"]}))
PYEOF
