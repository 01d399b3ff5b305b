#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2059 # "cond && ok || fail": ok and fail always succeed; header() builds bytes
# Checks the DecryptFS benchmark harness itself (not cce):
#   1. lib.sh's parsers and arithmetic on fixed inputs (no root, ~1 s);
#   2. run.sh's option errors (no root);
#   3. unless --parse-only: two short run.sh runs (root, FUSE) with the
#      gocryptfs-backed stand-ins in this directory, whose stdout and JSON
#      are checked for completeness and internal consistency: every figure
#      line present with PASS/MISS, every ratio equal to cce over the better
#      of gocryptfs's two read-ahead figures, the recorded bin dir, versions,
#      read-ahead settings and load averages. No figure is checked against a
#      threshold, so a busy machine does not fail it.
# Usage: bench/decryptfs/selftest/check.sh [--parse-only] [--work-dir DIR]
set -euo pipefail

SELFTEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
BENCH_DIR=$(cd "$SELFTEST_DIR/.." && pwd)
readonly SELFTEST_DIR BENCH_DIR
# shellcheck source=SCRIPTDIR/../lib.sh
source "$BENCH_DIR/lib.sh"

PARSE_ONLY=0
WORK_DIR=/var/tmp/cce-bench-decryptfs-selftest
while [[ $# -gt 0 ]]; do
  case $1 in
    --parse-only) PARSE_ONLY=1; shift ;;
    --work-dir) WORK_DIR=$2; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

FAILS=0 PASSES=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { PASSES=$((PASSES + 1)); }
expect_eq() { # what got want
  if [[ $2 == "$3" ]]; then ok; else fail "$1: got '$2', want '$3'"; fi
}
expect_fail() { # what expected-message-part cmd...
  local what=$1 part=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    fail "$what: succeeded, want a failure (output: $out)"
  elif [[ $out != *"$part"* ]]; then
    fail "$what: message '$out' does not mention '$part'"
  else
    ok
  fi
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---- 1. lib.sh ----

expect_eq "parse_only all" "$(parse_only all | tr '\n' ' ')" "seq rand1 rand4 small walk encrypt "
expect_eq "parse_only keeps run order, drops duplicates" "$(parse_only walk,seq,walk | tr '\n' ' ')" "seq walk "
expect_eq "parse_only one" "$(parse_only encrypt)" "encrypt"
expect_fail "parse_only unknown" "unknown measure 'seqq'" parse_only seq,seqq
expect_fail "parse_only empty entry" "empty entry" parse_only seq,,walk
expect_fail "parse_only trailing comma" "empty entry" parse_only seq,
expect_fail "parse_only empty" "empty list" parse_only ''

mapfile -t sizes < <(small_file_sizes 5000 14)
expect_eq "small_file_sizes count" "${#sizes[@]}" 5000
min=${sizes[0]} max=${sizes[0]} sum=0
for s in "${sizes[@]}"; do
  ((s < min)) && min=$s
  ((s > max)) && max=$s
  sum=$((sum + s))
done
((min >= 4096 && max <= 65536)) && ok || fail "small_file_sizes range: $min..$max, want within 4096..65536"
# Uniform on 4..64 KiB: mean 34.0 KiB; 5000 samples keep it within 1 KiB.
mean_kib=$((sum / 5000 / 1024))
((mean_kib >= 33 && mean_kib <= 35)) && ok || fail "small_file_sizes mean ${mean_kib} KiB, want about 34"
# Pinned: the tree must be the same on every machine and in every run.
expect_eq "small_file_sizes seed 14, first three" "${sizes[*]:0:3}" "4102 55800 39638"
expect_eq "small_file_sizes seed 14 total" "$sum" 172721730
for awk_impl in mawk gawk; do
  command -v "$awk_impl" >/dev/null || continue
  # shellcheck disable=SC2317 # the awk override is called by small_file_sizes
  got=$(awk() { command "$awk_impl" "$@"; } && small_file_sizes 5000 14 | sha256sum)
  expect_eq "small_file_sizes under $awk_impl" "$got" "$(printf '%s\n' "${sizes[@]}" | sha256sum)"
done
expect_eq "small_file_path 0" "$(small_file_path 0)" "d000/f00000.bin"
expect_eq "small_file_path 4999" "$(small_file_path 4999)" "d049/f04999.bin"

header() { # file version exponent [magic]
  { printf '%b' "${4:-CCE4DSF\\n}"; printf "\\x$(printf %02x "$2")\\x01\\x$(printf %02x "$3")\\x01"; head -c 56 /dev/zero; } >"$1"
}
header "$TMP/v2" 2 12
expect_eq "header_info v2" "$(header_info "$TMP/v2")" "2 4096"
header "$TMP/v1" 1 16
expect_eq "header_info v1" "$(header_info "$TMP/v1")" "1 65536"
header "$TMP/magic" 2 12 'CCE4DSG\n'
expect_fail "header_info bad magic" "byte 6" header_info "$TMP/magic"
header "$TMP/exp" 2 40
expect_fail "header_info bad exponent" "byte 10" header_info "$TMP/exp"
head -c 9 "$TMP/v2" >"$TMP/short"
expect_fail "header_info short" "shorter" header_info "$TMP/short"
expect_fail "header_info missing" "shorter" header_info "$TMP/nonexistent"

expect_eq "median odd" "$(median 3 1 2)" 2
expect_eq "median even" "$(median 4 1 3 2)" 2.5
expect_eq "median one" "$(median 7.5)" 7.5
expect_eq "ratio" "$(ratio 150 100)" 1.50
expect_eq "ratio by zero" "$(ratio 1 0)" 0
expect_eq "verdict >= pass" "$(verdict 1.50 '>=' 1.5)" PASS
expect_eq "verdict >= miss" "$(verdict 1.49 '>=' 1.5)" MISS
expect_eq "verdict <= pass" "$(verdict 46 '<=' 64)" PASS
expect_eq "max_of" "$(max_of 9391 12752.5)" 12752.5
expect_eq "max_of equal" "$(max_of 3 3)" 3
expect_eq "vs_best, 1 MiB better" "$(vs_best 100 50 80)" "80 1024 1.25"
expect_eq "vs_best, 128 KiB better" "$(vs_best 100 80 50)" "80 128 1.25"
expect_eq "vs_best, tie" "$(vs_best 90 60 60)" "60 128 1.50"
perf_sample='# comment line
    33.24%  [kernel.kallsyms]   [k] iowrite16
    20.00%  [kernel.kallsyms]   [k] finish_task_switch.isra.0
    10.50%  [kernel.kallsyms]   [k] fuse_dev_do_read
     6.00%  libcrypto.so.3      [.] CRYPTO_gcm128_decrypt
     1.00%  libfuse3.so.3.14.0  [.] fuse_session_receive_buf
     4.00%  libc.so.6           [.] malloc
     2.00%  cce-decryptfs       [.] cce::decryptfs::BlockReader::Read
     0.50%  libstdc++.so.6      [.] operator new'
expect_eq "perf_split" "$(perf_split <<<"$perf_sample")" "33.2 20.0 10.5 6.0 1.0 4.0 2.5"
expect_eq "perf_split, nothing" "$(perf_split </dev/null)" "0.0 0.0 0.0 0.0 0.0 0.0 0.0"
expect_eq "vs_best, decimals" "$(vs_best 1726 1161.5 1161.4)" "1161.5 128 1.49"
expect_eq "json_str" "$(json_str $'a"b\\c\nd')" '"a\"b\\c\nd"'

# ---- 2. run.sh option errors (before any root check) ----

RUN=$BENCH_DIR/run.sh
expect_fail "run.sh --only bogus" "unknown measure 'bogus'" "$RUN" --only bogus
expect_fail "run.sh --repeat 0" "--repeat: '0'" "$RUN" --repeat 0
expect_fail "run.sh --small-files x" "--small-files: 'x'" "$RUN" --small-files x
expect_fail "run.sh --frobnicate" "unknown argument" "$RUN" --frobnicate
help=$("$RUN" --help)
for word in --quick --only --small-files --bin-dir; do
  [[ $help == *"$word"* ]] && ok || fail "run.sh --help does not mention $word"
done

# ---- 3. end-to-end with the stand-ins ----

# check_run STDOUT_FILE EXPECTED_CHECKS... : the figure lines and the JSON.
check_run() {
  local out=$1 name
  shift
  local json
  json=$(tail -n 1 "$out")
  # Figure lines: one per read measure, with both gocryptfs figures and a verdict.
  local lines
  lines=$(grep -c -E '^(seq read|rand 4k|small files|metadata walk).*at 128 KiB read-ahead / .* at 1 MiB; cce/gocryptfs\(best, (128 KiB|1 MiB)\) = [0-9.]+ \(target >= [0-9.]+(, keep)?\) (PASS|MISS)$' "$out" || true)
  local want_lines=0
  for name in "$@"; do [[ $name == *_cce_over_gocryptfs ]] && want_lines=$((want_lines + 1)); done
  expect_eq "$out: figure lines" "$lines" "$want_lines"
  printf '%s\n' "$@" >"$TMP/want-checks"
  if json_check "$SELFTEST_DIR" "$TMP/want-checks" <<<"$json"; then ok; else fail "$out: JSON checks (above)"; fi
}

if ((PARSE_ONLY)); then
  echo "check.sh: $PASSES passed, $FAILS failed (parse only)"
  ((FAILS == 0))
  exit
fi

[[ $(id -u) -eq 0 ]] || { echo "check.sh: the end-to-end part needs root (or use --parse-only)" >&2; exit 1; }

# The Python part: JSON well formed, the checks named as expected, every
# ratio = cce / max(gocryptfs at 128 KiB, at 1 MiB), the bookkeeping there.
PY_CHECK=$(
  cat <<'EOF'
import json, sys
selftest_dir, want_file = sys.argv[1], sys.argv[2]
want = [l.strip() for l in open(want_file) if l.strip()]
d = json.loads(sys.stdin.read())
errors = []
def check(cond, msg):
    if not cond:
        errors.append(msg)
names = [c["name"] for c in d["checks"]]
check(names == want, f"checks {names}, want {want}")
for c in d["checks"]:
    check(isinstance(c["pass"], bool) and c["op"] in (">=", "<="), f"check {c}")
check(d["binaries"]["bin_dir"] == selftest_dir, f"bin_dir {d['binaries']['bin_dir']!r}, want {selftest_dir!r}")
check(d["binaries"]["cce_version"].startswith("cce selftest stand-in"), "cce_version")
check(len(d["binaries"]["cce_sha256_16"]) == 16, "cce_sha256_16")
check(d["dataset"]["format_version"] is None and d["dataset"]["block_size"] is None,
      "the stand-in dataset has no cce header, format_version/block_size must be null")
la = d["host"]["loadavg_1m"]
check(isinstance(la["start"], (int, float)) and isinstance(la["end"], (int, float)), "loadavg start/end")
check_of = {"seq_read_mbps": "seq_read_cce_over_gocryptfs",
            "rand4k_1job_iops": "rand4k_1job_cce_over_gocryptfs",
            "rand4k_4jobs_iops": "rand4k_4jobs_cce_over_gocryptfs",
            "small_files_1reader_mibps": "small_files_1reader_cce_over_gocryptfs",
            "small_files_4readers_mibps": "small_files_4readers_cce_over_gocryptfs",
            "metadata_walk_entries_per_s": "metadata_walk_cce_over_gocryptfs"}
reads = [k for k in d["results"] if k.endswith(("_mbps", "_iops", "_mibps", "_per_s")) and isinstance(d["results"][k], dict)]
for k in reads:
    r = d["results"][k]
    lo, hi = r["gocryptfs_ra128kb"], r["gocryptfs_ra1mb"]
    check(r["gocryptfs_best"] == max(lo, hi), f"{k}: gocryptfs_best {r['gocryptfs_best']} is not max({lo}, {hi})")
    check(r["gocryptfs_best_ra_kb"] == (1024 if hi > lo else 128), f"{k}: gocryptfs_best_ra_kb")
    want_ratio = round(r["cce"] / max(lo, hi), 2) if max(lo, hi) > 0 else 0
    check(abs(r["cce_over_gocryptfs"] - want_ratio) <= 0.011, f"{k}: ratio {r['cce_over_gocryptfs']}, want {want_ratio}")
    for t in ("plain", "cce", "gocryptfs_ra128kb", "gocryptfs_ra1mb"):
        check(r[t] > 0, f"{k}: {t} is {r[t]}")
        check(len(d["samples"][k][t]) == d["params"]["repeat"], f"{k}: {t} samples")
    value = {c["name"]: c["value"] for c in d["checks"]}.get(check_of[k])
    check(value == r["cce_over_gocryptfs"], f"{k}: check {check_of[k]} has value {value}, results say {r['cce_over_gocryptfs']}")
if reads:
    g = d["gocryptfs"]
    check(g["version"].startswith("gocryptfs"), f"gocryptfs version {g['version']!r}")
    check("-ro" in g["options"], "gocryptfs options lack -ro")
    check(g["read_ahead_kb_measured"] == [128, 1024], "gocryptfs read_ahead_kb_measured")
    check(g["read_ahead_kb_as_mounted"] == 128, f"gocryptfs read_ahead_kb_as_mounted {g['read_ahead_kb_as_mounted']}")
    ra = d["cce_decryptfs"]["read_ahead_kb"]
    check(1024 in (ra["large_file"], ra["tree"]), f"cce read_ahead_kb {ra} (the stand-in raises it to 1024)")
    for m in d["selected"]:
        if m != "encrypt":
            want_keys = ["small1", "small4"] if m == "small" else [m]
            for w in want_keys:
                check(isinstance(la.get(w), (int, float)), f"loadavg_1m.{w} missing")
if "encrypt" in d["selected"]:
    check(d["results"]["encrypt_mbps"] > 0 and d["results"]["encrypt_small_tree_files_per_s"] > 0, "encrypt figures")
for e in errors:
    print("  JSON:", e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
)
json_check() { python3 -c "$PY_CHECK" "$@"; }

mkdir -p "$WORK_DIR"
ALL_CHECKS=(seq_read_cce_over_gocryptfs rand4k_1job_cce_over_gocryptfs rand4k_4jobs_cce_over_gocryptfs
  small_files_1reader_cce_over_gocryptfs small_files_4readers_cce_over_gocryptfs metadata_walk_cce_over_gocryptfs
  encrypt_mbps decryptfs_peak_rss_mib)

echo "check.sh: end-to-end, all measures (about a minute)" >&2
if "$RUN" --quick --bin-dir "$SELFTEST_DIR" --work-dir "$WORK_DIR" --size-mib 32 --runtime 1 \
  --small-files 300 >"$TMP/all.out" 2>"$TMP/all.err"; then
  ok
  check_run "$TMP/all.out" "${ALL_CHECKS[@]}"
  for line in "encrypt 32MiB file: " "encrypt small-file tree (300 files" "decryptfs peak RSS: " "  binaries: $SELFTEST_DIR " \
    "  gocryptfs: gocryptfs " "  machine: "; do
    grep -qF -- "$line" "$TMP/all.out" && ok || fail "stdout lacks a line starting '$line'"
  done
  # The profile runs (perf on the stand-in daemon): a split per read and per file.
  if command -v perf >/dev/null; then
    for line in "where the time goes, rand 4k 1 job" "where the time goes, small files" "us of daemon CPU per read = disk kick" \
      "us of daemon CPU per file = disk kick"; do
      grep -qF -- "$line" "$TMP/all.out" && ok || fail "stdout lacks the profile line '$line'"
    done
    python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); p=d["profile"]; sys.exit(0 if all(k in p and p[k]["daemon_cpu_us_per_op"] > 0 and sum(p[k]["pct"].values()) > 90 for k in ("rand1_cce", "small1_cce")) else 1)' "$TMP/all.out" &&
      ok || fail "the JSON's profile lacks rand1_cce or small1_cce, or its shares do not add up"
  else
    grep -qF "where the time goes: not profiled: perf not found" "$TMP/all.out" && ok || fail "no note that perf is missing"
  fi
else
  tail -n 20 "$TMP/all.err" >&2
  fail "run.sh --quick with the stand-ins failed"
fi

echo "check.sh: end-to-end, --only walk" >&2
if "$RUN" --quick --only walk --bin-dir "$SELFTEST_DIR" --work-dir "$WORK_DIR" --small-files 150 \
  >"$TMP/walk.out" 2>"$TMP/walk.err"; then
  ok
  check_run "$TMP/walk.out" metadata_walk_cce_over_gocryptfs decryptfs_peak_rss_mib
  grep -q '^encrypt' "$TMP/walk.out" && fail "--only walk printed an encrypt figure" || ok
  grep -q 'writing .* MiB of random plaintext' "$TMP/walk.err" && fail "--only walk wrote the large file" || ok
else
  tail -n 20 "$TMP/walk.err" >&2
  fail "run.sh --only walk with the stand-ins failed"
fi

echo "check.sh: $PASSES passed, $FAILS failed"
((FAILS == 0))
