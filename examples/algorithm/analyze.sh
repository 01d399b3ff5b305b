#!/bin/sh
# The example algorithm of `make demo`: per-diagnosis claim counts and mean
# cost from the hospital-claims dataset, with cells under 10 claims
# suppressed (a small-cell rule the Output Gate also applies). Runs in the
# sandbox as an unprivileged user: the dataset is read-only at /data/claims,
# /output is the only place it can write, there is no network.
set -eu
IN=${1:-/data/claims}
OUT=${CCE_OUTPUT:-/output}
echo "analyze: reading $IN"
find "$IN" -name '*.csv' | sort > /tmp/inputs
echo "analyze: $(wc -l < /tmp/inputs) CSV file(s)"
# shellcheck disable=SC2046
awk -F, '
  FNR == 1 { next }                       # each file has a header row
  { n[$4]++; sum[$4] += $5; rows++ }
  END {
    print "diagnosis,claims,mean_cost"
    for (d in n) if (n[d] >= 10) printf "%s,%d,%.2f\n", d, n[d], sum[d] / n[d]
    printf "analyze: %d rows, %d diagnoses\n", rows, length(n) > "/dev/stderr"
  }' $(cat /tmp/inputs) | { read -r header; echo "$header"; sort; } > "$OUT/summary.csv"
echo "analyze: wrote $OUT/summary.csv ($(wc -l < "$OUT/summary.csv") lines)"
