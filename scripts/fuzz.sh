#!/usr/bin/env bash
# Fuzzing (docs/fuzzing.md). Builds the libFuzzer targets with clang + ASan +
# UBSan (-DCCE_FUZZ=ON) in build-fuzz/ -- only the targets and the libraries
# they link, not the whole project -- and runs each on its seed corpus.
#
#   scripts/fuzz.sh            `make fuzz`: each target for FUZZ_SECONDS
#                              (default 600), growing build-fuzz/corpus/<target>
#   scripts/fuzz.sh --smoke    `make test` (via scripts/fuzz-smoke.sh): each
#                              target replays its seeds, then fuzzes for
#                              FUZZ_SMOKE_SECONDS (default 5) from a scratch corpus
#   scripts/fuzz.sh --build-only   builds the targets, runs nothing (`make test`
#                              with FUZZ_OVERLAP=1 builds them while ctest runs)
#
# FUZZ_TARGETS="a b" limits the run to some targets. Findings (crash-*,
# leak-*, timeout-*, oom-*) land in build-fuzz/findings/<target>/; the script
# exits non-zero if any target found something. Without clang it fails,
# loudly: it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=long
case "${1:-}" in
  --smoke) MODE=smoke ;;
  --build-only) MODE=build ;;
  "") ;;
  *) echo "fuzz: ERROR: unknown argument '$1' (--smoke, --build-only or none)" >&2; exit 2 ;;
esac
if [ "$MODE" = smoke ]; then SECONDS_EACH="${FUZZ_SMOKE_SECONDS:-5}"; else SECONDS_EACH="${FUZZ_SECONDS:-600}"; fi
BUILD="${FUZZ_BUILD_DIR:-build-fuzz}"
JOBS="${JOBS:-$(nproc)}"

ALL_TARGETS="quote_fuzz collateral_fuzz jobspec_fuzz format_fuzz jwe_fuzz image_fuzz request_parse_fuzz unpack_fuzz policy_fuzz seccomp_fuzz ecdsa_fuzz gate_fuzz gate_reference_fuzz bundle_tar_fuzz"
ALL_TARGETS="$ALL_TARGETS explore_policy_fuzz explore_tabular_fuzz"
ALL_TARGETS="$ALL_TARGETS http_proxy_fuzz"
ALL_TARGETS="$ALL_TARGETS explore_jupyter_status_fuzz explore_kubeconfig_fuzz explore_k8s_response_fuzz"
ALL_TARGETS="$ALL_TARGETS sample_tar_fuzz script_request_fuzz plane_cookie_fuzz"
ALL_TARGETS="$ALL_TARGETS cli_wallet_message_fuzz"
ALL_TARGETS="$ALL_TARGETS eth_rlp eth_tx eth_hex eth_abi eth_personal"
ALL_TARGETS="$ALL_TARGETS eth_rpc_response eth_rented"
ALL_TARGETS="$ALL_TARGETS wallet_request_fuzz"
TARGETS="${FUZZ_TARGETS:-$ALL_TARGETS}"
declare -A SEEDS=(
  [quote_fuzz]="tests/data/tdx/dcap-qvl tests/data/tdx/go-tdx-guest tests/data/tdx/trustee"
  [collateral_fuzz]="tests/data/tdx/dcap-qvl tests/data/tdx/collateral/go-tdx-guest-2023 tests/data/tdx/collateral/trustee-2025"
  [jobspec_fuzz]="tests/data/jobspec"
  [format_fuzz]="tests/data/fuzz/format_fuzz"
  [jwe_fuzz]="tests/data/fuzz/jwe_fuzz"
  [image_fuzz]="tests/data/fuzz/image_fuzz"
  [request_parse_fuzz]="tests/data/fuzz/request_parse_fuzz"
  [unpack_fuzz]="tests/data/fuzz/unpack_fuzz"
  [policy_fuzz]="tests/data/fuzz/policy_fuzz"
  [seccomp_fuzz]="tests/data/fuzz/seccomp_fuzz"
  [ecdsa_fuzz]="tests/data/fuzz/ecdsa_fuzz"
  [gate_fuzz]="tests/data/fuzz/gate_fuzz"
  [gate_reference_fuzz]="tests/data/fuzz/gate_reference_fuzz"
  [bundle_tar_fuzz]="tests/data/fuzz/bundle_tar_fuzz"
  [explore_policy_fuzz]="tests/data/fuzz/explore_policy_fuzz"
  [explore_tabular_fuzz]="tests/data/fuzz/explore_tabular_fuzz"
  [http_proxy_fuzz]="tests/data/fuzz/http_proxy_fuzz"
  [explore_jupyter_status_fuzz]="tests/data/fuzz/explore_jupyter_status_fuzz"
  [explore_kubeconfig_fuzz]="tests/data/fuzz/explore_kubeconfig_fuzz"
  [explore_k8s_response_fuzz]="tests/data/fuzz/explore_k8s_response_fuzz"
  [sample_tar_fuzz]="tests/data/fuzz/sample_tar_fuzz"
  [script_request_fuzz]="tests/data/fuzz/script_request_fuzz"
  [plane_cookie_fuzz]="tests/data/fuzz/plane_cookie_fuzz"
  [cli_wallet_message_fuzz]="tests/data/fuzz/cli_wallet_message_fuzz"
  [wallet_request_fuzz]="tests/data/fuzz/wallet_request_fuzz"
  [eth_rlp]="tests/data/fuzz/eth_rlp"
  [eth_tx]="tests/data/fuzz/eth_tx"
  [eth_hex]="tests/data/fuzz/eth_hex"
  [eth_abi]="tests/data/fuzz/eth_abi"
  [eth_personal]="tests/data/fuzz/eth_personal"
  [eth_rpc_response]="tests/data/fuzz/eth_rpc_response"
  [eth_rented]="tests/data/fuzz/eth_rented"
)

for tool in clang clang++; do
  if ! command -v "$tool" >/dev/null; then
    echo "fuzz: ERROR: $tool not found. The fuzz targets need clang and libFuzzer:" \
         "run 'make deps' (Debian packages clang libclang-rt-14-dev)." >&2
    exit 1
  fi
done

start=$(date +%s)
if [ ! -f "$BUILD/build.ninja" ]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  # -O1 and line tables only: what libFuzzer runs are usually built with, and
  # a third less compile time than -O2 -g.
  CXX=clang++ CC=clang cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DCCE_FUZZ=ON -DCCE_SANITIZER=address "${launcher[@]}"
fi
# shellcheck disable=SC2086
ninja -C "$BUILD" -j "$JOBS" $TARGETS
echo "fuzz: built $(wc -w <<<"$TARGETS") targets in $(( $(date +%s) - start ))s"
if [ "$MODE" = build ]; then exit 0; fi

# One target: seeds replayed, then fuzzed. Prints what it found; returns 1
# when the target crashed or broke an invariant.
run_target() {
  local target=$1 findings="$BUILD/findings/$1" log="$BUILD/$1.log" rc=0 corpus d
  mkdir -p "$findings"
  local seeds=()
  for d in ${SEEDS[$target]}; do seeds+=("$d"); done
  if [ "$MODE" = smoke ]; then
    corpus=$(mktemp -d)
    # Every seed once (a seed that breaks an invariant fails here, by name),
    # then a short run that mutates them.
    if ! "$BUILD/fuzz/$target" -runs=0 -artifact_prefix="$findings/" "${seeds[@]}" >"$log" 2>&1 ||
       ! "$BUILD/fuzz/$target" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2048 \
           -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" "${seeds[@]}" \
           >>"$log" 2>&1; then
      echo "fuzz: $target FOUND A PROBLEM; reproduce with: $BUILD/fuzz/$target $findings/<file>"
      tail -n 40 "$log"
      rc=1
    fi
    rm -rf "$corpus"
  else
    corpus="$BUILD/corpus/$target"
    mkdir -p "$corpus"
    echo "fuzz: $target for ${SECONDS_EACH}s (seeds: ${seeds[*]})"
    if ! "$BUILD/fuzz/$target" -max_total_time="$SECONDS_EACH" -artifact_prefix="$findings/" \
        -print_final_stats=1 "$corpus" "${seeds[@]}" 2>"$log"; then
      echo "fuzz: $target FOUND A PROBLEM; see $log and $findings/"
      rc=1
    fi
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | \
    sed "s/^/fuzz: $target: /" || true
  return $rc
}

for target in $TARGETS; do
  for d in ${SEEDS[$target]:-}; do
    if [ ! -e "$d" ]; then
      echo "fuzz: ERROR: $target: seed directory $d is missing" >&2
      exit 1
    fi
  done
  if [ -z "${SEEDS[$target]:-}" ]; then
    echo "fuzz: ERROR: $target has no seed directory in SEEDS" >&2
    exit 1
  fi
done

# The smoke runs JOBS targets at once (each is one process); long runs go
# one after another, each with the whole machine.
status=0
parallel=1
if [ "$MODE" = smoke ]; then parallel=$JOBS; fi
running=0
for target in $TARGETS; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_target "$target" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
echo "fuzz: done in $(( $(date +%s) - start ))s total"
exit $status
