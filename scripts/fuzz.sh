#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang + ASan (-DCCE_FUZZ=ON) in
# build-fuzz/ and runs each for FUZZ_SECONDS (default 600) on its seed corpus,
# one after the other. Findings (crash-*, leak-*, timeout-*) land in
# build-fuzz/findings/<target>/; the script exits non-zero if any target
# found something. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-600}"
BUILD=build-fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
  CXX=clang++ CC=clang cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCCE_FUZZ=ON -DCCE_SANITIZER=address
fi
ninja -C "$BUILD" quote_fuzz collateral_fuzz jobspec_fuzz

declare -A SEEDS=(
  [quote_fuzz]="tests/data/tdx/dcap-qvl tests/data/tdx/go-tdx-guest tests/data/tdx/trustee"
  [collateral_fuzz]="tests/data/tdx/dcap-qvl tests/data/tdx/collateral/go-tdx-guest-2023 tests/data/tdx/collateral/trustee-2025"
  [jobspec_fuzz]="tests/data/jobspec"
)
status=0
for target in quote_fuzz collateral_fuzz jobspec_fuzz; do
  corpus="$BUILD/corpus/$target"
  findings="$BUILD/findings/$target"
  mkdir -p "$corpus" "$findings"
  seeds=()
  for d in ${SEEDS[$target]}; do [ -e "$d" ] && seeds+=("$d"); done
  echo "fuzz: $target for ${SECONDS_EACH}s (seeds: ${seeds[*]:-none})"
  if ! "$BUILD/fuzz/$target" -max_total_time="$SECONDS_EACH" -artifact_prefix="$findings/" \
      -print_final_stats=1 "$corpus" "${seeds[@]}" 2>"$BUILD/$target.log"; then
    echo "fuzz: $target FOUND A PROBLEM; see $BUILD/$target.log and $findings/"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$BUILD/$target.log" | \
    sed "s/^/fuzz: $target: /" || true
done
exit $status
