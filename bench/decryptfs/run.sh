#!/usr/bin/env bash
# Cold-cache read benchmark of cce-decryptfs against gocryptfs (the baseline)
# and the plain disk, all in one run on one machine: one large file read
# sequentially and at random, a tree of small files read whole (one reader
# and four) and walked (find/stat); plus `cce dataset encrypt` throughput and
# the decryptfs daemon's peak RSS. gocryptfs is measured at its default FUSE
# read-ahead (128 KiB) and at cce-decryptfs's (1 MiB); every ratio is taken
# against the better of the two. README.md beside this file says what is
# measured and how to read it. Needs root (drop_caches, FUSE mounts, sysfs).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO_ROOT
# shellcheck source=SCRIPTDIR/lib.sh
source "$SCRIPT_DIR/lib.sh"

# Options; empty means "not given" (the defaults depend on --quick).
OPT_SIZE_MIB='' OPT_RUNTIME='' OPT_REPEAT='' OPT_ENCRYPT_RUNS='' OPT_SMALL_FILES=''
QUICK=0
PROFILE=1
ONLY=all
BIN_DIR=$REPO_ROOT/build/bin
WORK_DIR=/var/tmp/cce-bench-decryptfs

# Targets. Read targets are cce relative to gocryptfs's better figure (of its
# 128 KiB and 1 MiB read-ahead runs) in the same run; 1.0 means "keep".
readonly TARGET_SEQ=1.5 TARGET_RAND1=1.3 TARGET_RAND4=1.3
readonly TARGET_SMALL1=1.5 TARGET_SMALL4=1.0 TARGET_WALK=1.0
readonly TARGET_ENCRYPT_MBPS=1000 TARGET_RSS_MIB=64
# While random reads run, the page cache of the file and of its ciphertext is
# emptied this often (seconds); see README, "Keeping random reads cold".
readonly EVICT_INTERVAL_S=0.1
readonly DATA_NAME=data.bin
# The small-file tree: sizes uniform in 4..64 KiB from this seed (lib.sh).
readonly SMALL_SEED=14 SMALL_READERS=4 SMALL_BATCH=50
# FUSE read-ahead (KiB): gocryptfs's default, and what cce-decryptfs sets on
# its own mount and gocryptfs gets in its second variant.
readonly RA_DEFAULT_KB=128 RA_RAISED_KB=1024

usage() {
  cat <<EOF
Usage: bench/decryptfs/run.sh [options]

Cold-cache reads through cce-decryptfs, gocryptfs (at 128 KiB and 1 MiB
FUSE read-ahead) and the plain disk: a large file sequentially and at
random (4 KiB, 1 and 4 jobs), a tree of small files (4-64 KiB) read whole
by 1 and $SMALL_READERS readers, and a metadata walk of that tree; plus
'cce dataset encrypt' throughput (the large file and the tree) and
cce-decryptfs peak RSS. The random reads also run on decryptfs_floor
(fuse_floor.cc), a libfuse server with cce-decryptfs's settings and disk
reads but no decryption, and on the same server doing no I/O: the most a
FUSE file system reading these bytes gets here. Runs as root. A default
run takes about 11 minutes.

Options:
  --quick            a look in about 2 minutes: --size-mib 256 --runtime 4
                     --repeat 1 --encrypt-runs 1 --small-files 1000 (options
                     given explicitly still win)
  --only LIST        measure only these, comma-separated, from:
                     seq, rand1, rand4, small (1 and $SMALL_READERS readers), walk,
                     encrypt (the large file and the tree); default all
  --size-mib N       size of the large file in MiB (default 1024)
  --runtime S        seconds per random-read fio run (default 15)
  --repeat N         rounds of each read measurement, the targets taking
                     turns within a round; the median is reported (default 3)
  --encrypt-runs N   cold runs of each 'cce dataset encrypt' (default 3)
  --small-files N    files in the small-file tree (default 5000)
  --no-profile       skip "where the time goes": after the measured rounds,
                     one more random-read run on cce and on the floor, and one
                     more small-file pass on cce, each under 'perf record' on
                     its daemon (not counted in any figure; needs perf:
                     apt-get install -y linux-perf)
  --bin-dir DIR      where cce and cce-decryptfs are (default build/bin)
  --work-dir DIR     scratch and results; must be on a real disk, not tmpfs
                     (default $WORK_DIR)
  --help             this text

Progress goes to stderr; figures, PASS/MISS per target and a final JSON line
go to stdout. The JSON is also written to WORK_DIR/results/latest.json.
Needs: fio hyperfine gocryptfs fuse3 time (apt-get install -y fio hyperfine
gocryptfs fuse3 time).
EOF
}

die() {
  echo "run.sh: error: $*" >&2
  exit 1
}

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case $1 in
    --help | -h) usage; exit 0 ;;
    --quick) QUICK=1; shift ;;
    --no-profile) PROFILE=0; shift ;;
    --only) need_value "$@"; ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --size-mib) need_value "$@"; OPT_SIZE_MIB=$2; shift 2 ;;
    --size-mib=*) OPT_SIZE_MIB=${1#*=}; shift ;;
    --runtime) need_value "$@"; OPT_RUNTIME=$2; shift 2 ;;
    --runtime=*) OPT_RUNTIME=${1#*=}; shift ;;
    --repeat) need_value "$@"; OPT_REPEAT=$2; shift 2 ;;
    --repeat=*) OPT_REPEAT=${1#*=}; shift ;;
    --encrypt-runs) need_value "$@"; OPT_ENCRYPT_RUNS=$2; shift 2 ;;
    --encrypt-runs=*) OPT_ENCRYPT_RUNS=${1#*=}; shift ;;
    --small-files) need_value "$@"; OPT_SMALL_FILES=$2; shift 2 ;;
    --small-files=*) OPT_SMALL_FILES=${1#*=}; shift ;;
    --bin-dir) need_value "$@"; BIN_DIR=$2; shift 2 ;;
    --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
    --work-dir) need_value "$@"; WORK_DIR=$2; shift 2 ;;
    --work-dir=*) WORK_DIR=${1#*=}; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if ((QUICK)); then
  SIZE_MIB=${OPT_SIZE_MIB:-256} RUNTIME_S=${OPT_RUNTIME:-4} REPEAT=${OPT_REPEAT:-1}
  ENCRYPT_RUNS=${OPT_ENCRYPT_RUNS:-1} SMALL_FILES=${OPT_SMALL_FILES:-1000}
else
  SIZE_MIB=${OPT_SIZE_MIB:-1024} RUNTIME_S=${OPT_RUNTIME:-15} REPEAT=${OPT_REPEAT:-3}
  ENCRYPT_RUNS=${OPT_ENCRYPT_RUNS:-3} SMALL_FILES=${OPT_SMALL_FILES:-5000}
fi
[[ $SIZE_MIB =~ ^[1-9][0-9]*$ ]] || die "--size-mib: '$SIZE_MIB' is not a positive integer"
[[ $RUNTIME_S =~ ^[1-9][0-9]*$ ]] || die "--runtime: '$RUNTIME_S' is not a positive integer"
[[ $ENCRYPT_RUNS =~ ^[1-9][0-9]*$ ]] || die "--encrypt-runs: '$ENCRYPT_RUNS' is not a positive integer"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "--repeat: '$REPEAT' is not a positive integer"
[[ $SMALL_FILES =~ ^[1-9][0-9]*$ ]] || die "--small-files: '$SMALL_FILES' is not a positive integer"
((SMALL_FILES <= 100000)) || die "--small-files: $SMALL_FILES is more than 100000"
readonly SIZE_MIB RUNTIME_S ENCRYPT_RUNS REPEAT SMALL_FILES QUICK
only_list=$(parse_only "$ONLY" 2>&1) || die "$only_list"
mapfile -t SELECTED <<<"$only_list"
readonly SELECTED
declare -A SEL=()
for m in "${SELECTED[@]}"; do SEL[$m]=1; done
sel() { [[ -n ${SEL[$1]:-} ]]; }
# What the selection needs set up.
NEED_BIG=0 NEED_SMALL=0 NEED_GC=0
if sel seq || sel rand1 || sel rand4 || sel encrypt; then NEED_BIG=1; fi
if sel small || sel walk || sel encrypt; then NEED_SMALL=1; fi
if sel seq || sel rand1 || sel rand4 || sel small || sel walk; then NEED_GC=1; fi
NEED_CCE_BIG=0 NEED_CCE_SMALL=0
if sel seq || sel rand1 || sel rand4; then NEED_CCE_BIG=1; fi
if sel small || sel walk; then NEED_CCE_SMALL=1; fi
readonly NEED_BIG NEED_SMALL NEED_GC NEED_CCE_BIG NEED_CCE_SMALL

readonly SIZE_BYTES=$((SIZE_MIB * 1024 * 1024))
if ((SIZE_MIB % 1024 == 0)); then SIZE_LABEL="$((SIZE_MIB / 1024))GiB"; else SIZE_LABEL="${SIZE_MIB}MiB"; fi
readonly SIZE_LABEL

# ---- preflight ----

[[ $(id -u) -eq 0 ]] || die "must run as root (drop_caches, FUSE mounts and read_ahead_kb need it)"
for tool in fio hyperfine gocryptfs fusermount3 flock cmp diff findmnt mountpoint xargs sha256sum od; do
  command -v "$tool" >/dev/null ||
    die "'$tool' not found; install with: apt-get install -y fio hyperfine gocryptfs fuse3 time diffutils util-linux findutils"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found; install with: apt-get install -y time"
[[ -c /dev/fuse ]] || die "/dev/fuse missing (no FUSE in this kernel or container)"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"
abs_bin_dir=$(cd "$BIN_DIR" 2>/dev/null && pwd -P) || die "--bin-dir '$BIN_DIR' does not exist (build first: make build)"
BIN_DIR=$abs_bin_dir
readonly BIN_DIR CCE=$BIN_DIR/cce DECRYPTFS=$BIN_DIR/cce-decryptfs
[[ -x $CCE ]] || die "$CCE not found or not executable (build first: make build)"
[[ -x $DECRYPTFS ]] || die "$DECRYPTFS not found or not executable (build first: make build)"

mkdir -p "$WORK_DIR"
WORK_DIR=$(cd "$WORK_DIR" && pwd)
readonly WORK_DIR
# /proc/self/mounts escapes whitespace; keeping paths plain keeps the mount checks simple.
[[ $WORK_DIR =~ ^[A-Za-z0-9_./+-]+$ ]] || die "--work-dir '$WORK_DIR': use a path without spaces or special characters"
# statfs says what really holds the directory (findmnt may list stacked mounts).
case $(stat -f -c %T "$WORK_DIR") in
  tmpfs | ramfs | fuseblk | fuse | overlayfs | nfs | smb2 | cifs | v9fs | virtiofs)
    die "--work-dir '$WORK_DIR' is on $(stat -f -c %T "$WORK_DIR"); put it on a local disk file system (ext4, xfs, btrfs)" ;;
esac
FS_TYPE=$(findmnt -n -o FSTYPE -T "$WORK_DIR" | tail -n 1)
FS_SOURCE=$(findmnt -n -o SOURCE -T "$WORK_DIR" | tail -n 1)
readonly FS_TYPE FS_SOURCE

# Block-device counters of the disk under WORK_DIR: how many bytes each
# measurement really read from the device (read amplification, cache hits).
DEV_STAT=
if [[ $FS_SOURCE == /dev/* ]]; then
  dev_name=$(basename "$(readlink -f "$FS_SOURCE")")
  [[ -r /sys/class/block/$dev_name/stat ]] && DEV_STAT=/sys/class/block/$dev_name/stat
fi
readonly DEV_STAT

exec 9>"$WORK_DIR/.lock"
flock -n 9 || die "another run holds $WORK_DIR/.lock"

readonly DATA_DIR=$WORK_DIR/data
readonly PLAIN_DIR=$DATA_DIR/plain PLAIN_FILE=$DATA_DIR/plain/$DATA_NAME PLAIN_SMALL=$DATA_DIR/plain-small
readonly SMALL_LIST=$DATA_DIR/small-files.list
readonly CCE_KEY=$DATA_DIR/cce.key CCE_ENC=$DATA_DIR/cce-enc CCE_MNT=$DATA_DIR/cce-mnt
readonly CCE_SMALL_ENC=$DATA_DIR/cce-small-enc CCE_SMALL_MNT=$DATA_DIR/cce-small-mnt
readonly GC_PASS=$DATA_DIR/gocryptfs.pass GC_CIPHER=$DATA_DIR/gc-cipher GC_MNT=$DATA_DIR/gc-mnt
readonly FLOOR_MNT=$DATA_DIR/floor-mnt ZEROS_MNT=$DATA_DIR/zeros-mnt
readonly ALL_MOUNTS=("$CCE_MNT" "$CCE_SMALL_MNT" "$GC_MNT" "$FLOOR_MNT" "$ZEROS_MNT")
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
readonly RUN_ID RESULTS_DIR=$WORK_DIR/results
readonly LOG_DIR=$RESULTS_DIR/$RUN_ID

# The small-file tree: sizes and total, fixed by SMALL_FILES and SMALL_SEED.
mapfile -t SMALL_SIZES < <(small_file_sizes "$SMALL_FILES" "$SMALL_SEED")
SMALL_BYTES=0
for s in "${SMALL_SIZES[@]}"; do SMALL_BYTES=$((SMALL_BYTES + s)); done
readonly SMALL_DIRS=$(((SMALL_FILES + 99) / 100))
readonly SMALL_BYTES SMALL_ENTRIES=$((SMALL_FILES + SMALL_DIRS + 1)) # files, dirs and the root
SMALL_MIB_LABEL=$(calc "$SMALL_BYTES / 1048576" 1)
readonly SMALL_MIB_LABEL

avail_mib=$(df --output=avail -BM "$WORK_DIR" | tail -1 | tr -dc 0-9)
need_mib=512 # slack
((NEED_BIG)) && need_mib=$((need_mib + SIZE_MIB * 3 + SIZE_MIB / 8)) # plaintext + two ciphertext copies
((NEED_SMALL)) && need_mib=$((need_mib + SMALL_BYTES * 4 / 1048576)) # the same, plus per-file overhead
((avail_mib >= need_mib)) || die "$WORK_DIR has ${avail_mib} MiB free, needs about ${need_mib} MiB"

# ---- process and mount bookkeeping; cleanup runs on any exit ----

declare -A MOUNT_PID=() # mountpoint -> pid of the FUSE daemon we started (foreground mode)
EVICTOR_PID=
GC_BDI= # /sys/class/bdi/MAJ:MIN of the read-only gocryptfs mount
START_S=$SECONDS

progress() { printf '[%3ds] %s\n' $((SECONDS - START_S)) "$*" >&2; }

is_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

# Alive and not a zombie (kill -0 succeeds on zombies, which our children
# are until reaped).
proc_alive() {
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z ]]
}

wait_gone() { # pid seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    proc_alive "$1" || return 0
    sleep 0.1
  done
  return 1
}

# Unmounts and waits for the daemon; escalates to lazy unmount and signals.
# Returns the daemon's exit status (non-zero if it had to be killed).
stop_fuse() {
  local mnt=$1 pid=${MOUNT_PID[$1]:-} rc=0
  if is_mounted "$mnt"; then
    fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || rc=1
  fi
  if [[ -n $pid ]]; then
    if ! wait_gone "$pid" 10; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
      rc=1
    fi
    wait "$pid" 2>/dev/null || rc=$?
  fi
  unset "MOUNT_PID[$mnt]"
  return "$rc"
}

stop_evictor() {
  [[ -n $EVICTOR_PID ]] || return 0
  kill "$EVICTOR_PID" 2>/dev/null || true
  wait "$EVICTOR_PID" 2>/dev/null || true
  EVICTOR_PID=
}

# Puts the gocryptfs mount's read-ahead back to the kernel default, so a
# mount that outlives us (it should not) is left as gocryptfs made it.
restore_gc_ra() {
  [[ -n $GC_BDI && -w $GC_BDI/read_ahead_kb ]] || return 0
  echo "$RA_DEFAULT_KB" >"$GC_BDI/read_ahead_kb" 2>/dev/null || true
}

cleanup() {
  local rc=$? mnt
  set +e
  trap - EXIT INT TERM
  stop_evictor
  restore_gc_ra
  for mnt in "${!MOUNT_PID[@]}"; do stop_fuse "$mnt"; done
  for mnt in "${ALL_MOUNTS[@]}"; do # left over from a run that was SIGKILLed
    is_mounted "$mnt" && { fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"; }
  done
  rm -rf --one-file-system "$DATA_DIR"
  ((rc == 0)) || echo "run.sh: failed (exit $rc); logs in $LOG_DIR" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts a FUSE daemon in the foreground mode as our child (so we own its pid)
# and waits until the mount is there. Sets FUSE_PID.
start_fuse() { # mountpoint log cmd...
  local mnt=$1 log=$2 i
  shift 2
  "$@" >"$log" 2>&1 &
  FUSE_PID=$!
  MOUNT_PID[$mnt]=$FUSE_PID
  for ((i = 0; i < 300; i++)); do
    is_mounted "$mnt" && return 0
    if ! proc_alive "$FUSE_PID"; then
      tail -n 20 "$log" >&2 || true
      die "$1 exited before mounting $mnt (log: $log)"
    fi
    sleep 0.1
  done
  tail -n 20 "$log" >&2 || true
  die "$1 did not mount $mnt within 30 s (log: $log)"
}

bdi_of() { echo "/sys/class/bdi/$(mountpoint -d "$1")"; }
ra_kb_of() { cat "$(bdi_of "$1")/read_ahead_kb" 2>/dev/null || echo 0; }

# Waits up to 5 s for cce-decryptfs to raise its mount's read-ahead (it does
# so itself, right after mounting; docs/decryptfs.md) and prints the value.
cce_ra_kb() {
  local mnt=$1 i kb
  for ((i = 0; i < 50; i++)); do
    kb=$(ra_kb_of "$mnt")
    ((kb >= RA_RAISED_KB)) && break
    sleep 0.1
  done
  if ((kb != RA_RAISED_KB)); then
    echo "run.sh: warning: cce-decryptfs on $mnt has read_ahead_kb $kb, not $RA_RAISED_KB; cce is measured at $kb" >&2
  fi
  echo "$kb"
}

# Sets the gocryptfs mount's read-ahead and checks that it took.
set_gc_ra() { # kib
  local got
  echo "$1" >"$GC_BDI/read_ahead_kb" || die "cannot write $GC_BDI/read_ahead_kb"
  got=$(cat "$GC_BDI/read_ahead_kb")
  [[ $got == "$1" ]] || die "set $GC_BDI/read_ahead_kb (gocryptfs) to $1 but it reads $got"
}

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# Evicts the given files' cached pages every EVICT_INTERVAL_S (dd with
# iflag=nocache and count=0 is posix_fadvise(POSIX_FADV_DONTNEED) on the whole
# file). Targeted rather than drop_caches so other processes on the machine,
# and our own tools, keep their cache.
start_evictor() { # files...
  (
    trap - EXIT INT TERM
    while :; do
      for f in "$@"; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true; done
      sleep "$EVICT_INTERVAL_S"
    done
  ) &
  EVICTOR_PID=$!
}

dev_sectors_read() { # 512-byte sectors read from the device so far
  if [[ -n $DEV_STAT ]]; then awk '{ print $3 }' "$DEV_STAT"; else echo 0; fi
}

cpu_ticks() { # user+system clock ticks of a process, all threads
  [[ -n $1 ]] || { echo 0; return; }
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

vm_hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
loadavg_1m() { cut -d' ' -f1 /proc/loadavg; }
CLK_TCK=$(getconf CLK_TCK)
readonly CLK_TCK

# ---- the targets ----

# Every read measurement runs on these, in turn within a round: the plain
# disk, cce-decryptfs, and gocryptfs at the default and the raised
# read-ahead (one mount; its read_ahead_kb is set before each of its runs and
# is read by the kernel when a file is opened).
readonly TARGETS=(plain cce gc128 gc1024)
# Random reads also run on two bench-only libfuse servers (decryptfs_floor,
# fuse_floor.cc) with cce-decryptfs's FUSE settings: "floor" does cce's
# O_DIRECT reads of the same ciphertext object and no decryption, "zeros"
# does no I/O (the FUSE round trip alone). What floor reaches is the most
# any libfuse server reading these bytes gets on this machine.
readonly RAND_TARGETS=(plain cce gc128 gc1024 floor zeros)
declare -A TARGET_NAME=([plain]=plain [cce]=cce [gc128]="gocryptfs@128KiB" [gc1024]="gocryptfs@1MiB"
  [floor]="floor(libfuse+disk, no crypto)" [zeros]="zeros(libfuse only)")

prepare_target() {
  case $1 in
    gc128) set_gc_ra "$RA_DEFAULT_KB" ;;
    gc1024) set_gc_ra "$RA_RAISED_KB" ;;
  esac
}

big_file_of() {
  case $1 in
    plain) echo "$PLAIN_FILE" ;;
    cce) echo "$CCE_MNT/$DATA_NAME" ;;
    gc*) echo "$GC_MNT/$DATA_NAME" ;;
    floor) echo "$FLOOR_MNT/data.bin" ;;
    zeros) echo "$ZEROS_MNT/data.bin" ;;
  esac
}
small_root_of() {
  case $1 in
    plain) echo "$PLAIN_SMALL" ;;
    cce) echo "$CCE_SMALL_MNT" ;;
    gc*) echo "$GC_MNT/small" ;;
  esac
}
daemon_pid_of() { # target measure
  case $1 in
    plain) echo "" ;;
    cce) if [[ $2 == small* || $2 == walk ]]; then echo "$CCE_SMALL_PID"; else echo "$CCE_PID"; fi ;;
    gc*) echo "$GC_PID" ;;
    floor) echo "$FLOOR_PID" ;;
    zeros) echo "$ZEROS_PID" ;;
  esac
}
# What a target's random reads must not find in the page cache: the file read
# and the files its daemon reads from. (The gocryptfs cipher dir's top level
# holds the large file's ciphertext; the small tree is one directory down.)
evict_list() {
  case $1 in
    plain) echo "$PLAIN_FILE" ;;
    cce) echo "$CCE_MNT/$DATA_NAME"; find "$CCE_ENC" -type f ;;
    gc*) echo "$GC_MNT/$DATA_NAME"; find "$GC_CIPHER" -maxdepth 1 -type f ;;
    floor) echo "$FLOOR_MNT/data.bin"; echo "$FLOOR_OBJECT" ;;
    zeros) echo "$ZEROS_MNT/data.bin" ;;
  esac
}
# Round r starts at target (r-1) mod 4, so that no target always runs first
# (right after setup) or right after the same other target.
round_order() { # round target...
  local r=$1 i
  shift
  local list=("$@") n=$#
  for ((i = 0; i < n; i++)); do echo "${list[(i + r - 1) % n]}"; done
}

# ---- measurement bookkeeping ----

# Keyed "<measure>_<target>": per-round samples of the headline figure
# (space separated), and sums over the rounds of operations (reads, files,
# entries), bytes, device KiB read, daemon CPU ticks and wall seconds.
declare -A SAMPLES=() OPS=() BYTES=() DEV_KIB=() CPU_TICKS=() WALL_S=()
declare -A LOAD_AT=() # measure -> 1-min load average when it started

record() { # key ops bytes dev_sectors cpu_ticks wall_s sample
  SAMPLES[$1]+=" $7"
  OPS[$1]=$((${OPS[$1]:-0} + $2))
  BYTES[$1]=$((${BYTES[$1]:-0} + $3))
  DEV_KIB[$1]=$((${DEV_KIB[$1]:-0} + $4 / 2))
  CPU_TICKS[$1]=$((${CPU_TICKS[$1]:-0} + $5))
  WALL_S[$1]=$(calc "${WALL_S[$1]:-0} + $6" 3)
}

# measure_fio KEY ROUND DAEMON_PID EVICT(0|1) fio-args...
# Cold cache before each run; records device reads and daemon CPU around it.
# With EVICT=1 the files in EVICT_FILES are kept out of the page cache while
# fio runs. The sample is MB/s for sequential runs, IOPS for random ones.
measure_fio() {
  local key=$1 round=$2 pid=$3 evict=$4 out s0 s1 c0 c1 line bs=4096 sample
  shift 4
  [[ $1 == --rw=read ]] && bs=1048576
  out=$LOG_DIR/fio-$key-r$round.txt
  drop_caches
  s0=$(dev_sectors_read)
  c0=$(cpu_ticks "$pid")
  if ((evict)); then start_evictor "${EVICT_FILES[@]}"; fi
  if ! fio --name="$key" --readonly --ioengine=psync --invalidate=1 --size="$SIZE_BYTES" \
    --output-format=terse --terse-version=3 "$@" >"$out" 2>"$out.err"; then
    stop_evictor
    cat "$out.err" >&2
    die "fio $key failed (log: $out)"
  fi
  stop_evictor
  s1=$(dev_sectors_read)
  c1=$(cpu_ticks "$pid")
  # terse v3: 5 error, 6 read KiB total, 7 read bandwidth KiB/s, 8 read IOPS, 9 runtime ms
  line=$(grep '^3;' "$out" | tail -n 1)
  [[ -n $line ]] || die "no fio result in $out"
  IFS=';' read -r -a f <<<"$line"
  [[ ${f[4]} == 0 ]] || die "fio $key reported error ${f[4]} (log: $out)"
  if ((bs == 4096)); then sample=${f[7]}; else sample=$(calc "${f[6]} * 1024 / 1000000" 1); fi
  record "$key" $((f[5] * 1024 / bs)) $((f[5] * 1024)) $((s1 - s0)) $((c1 - c0)) "$(calc "${f[8]} / 1000" 3)" "$sample"
}

# measure_small KEY ROUND DAEMON_PID ROOT READERS
# Reads every file of the small tree whole with cat (read(2) of 128 KiB,
# so one call per file plus the one that sees EOF), the files handed out by
# xargs in batches of SMALL_BATCH to READERS parallel cats, after a
# drop_caches. Sample: plaintext MiB/s.
measure_small() {
  local key=$1 round=$2 pid=$3 root=$4 readers=$5 s0 s1 c0 c1 t0 t1 wall
  drop_caches
  s0=$(dev_sectors_read)
  c0=$(cpu_ticks "$pid")
  t0=$EPOCHREALTIME
  (cd "$root" && xargs -0 -P "$readers" -n "$SMALL_BATCH" cat -- <"$SMALL_LIST" >/dev/null) 2>"$LOG_DIR/$key-r$round.err" ||
    { tail -n 5 "$LOG_DIR/$key-r$round.err" >&2; die "reading the small files under $root failed (log: $LOG_DIR/$key-r$round.err)"; }
  t1=$EPOCHREALTIME
  s1=$(dev_sectors_read)
  c1=$(cpu_ticks "$pid")
  wall=$(calc "$t1 - $t0" 6)
  record "$key" "$SMALL_FILES" "$SMALL_BYTES" $((s1 - s0)) $((c1 - c0)) "$wall" "$(calc "$SMALL_BYTES / 1048576 / $wall" 1)"
}

# measure_walk KEY ROUND DAEMON_PID ROOT
# find(1) over the small tree printing every entry's size (an lstat each),
# after a drop_caches. Sample: entries per second. The entry count is checked.
measure_walk() {
  local key=$1 round=$2 pid=$3 root=$4 s0 s1 c0 c1 t0 t1 wall n
  local out=$LOG_DIR/$key-r$round.txt
  drop_caches
  s0=$(dev_sectors_read)
  c0=$(cpu_ticks "$pid")
  t0=$EPOCHREALTIME
  (cd "$root" && find . -printf '%s %y\n' >"$out") 2>"$out.err" ||
    { tail -n 5 "$out.err" >&2; die "find over $root failed (log: $out.err)"; }
  t1=$EPOCHREALTIME
  s1=$(dev_sectors_read)
  c1=$(cpu_ticks "$pid")
  n=$(wc -l <"$out")
  ((n == SMALL_ENTRIES)) || die "find over $root listed $n entries, expected $SMALL_ENTRIES (log: $out)"
  wall=$(calc "$t1 - $t0" 6)
  record "$key" "$n" 0 $((s1 - s0)) $((c1 - c0)) "$wall" "$(calc "$n / $wall" 0)"
}

seq_args() { echo "--rw=read --bs=1M --numjobs=1"; }
rand_args() { # jobs
  echo "--rw=randread --bs=4k --fadvise_hint=random --norandommap --time_based" \
    "--runtime=$RUNTIME_S --numjobs=$1 --group_reporting"
}

# Runs one read measurement for REPEAT rounds over all targets.
run_rounds() { # measure label
  local m=$1 label=$2 round t key pid targets=("${TARGETS[@]}")
  [[ $m == rand* && -n $FLOOR_PID ]] && targets=("${RAND_TARGETS[@]}")
  LOAD_AT[$m]=$(loadavg_1m)
  for ((round = 1; round <= REPEAT; round++)); do
    for t in $(round_order "$round" "${targets[@]}"); do
      progress "$label on ${TARGET_NAME[$t]} (round $round/$REPEAT)"
      prepare_target "$t"
      key=${m}_$t
      pid=$(daemon_pid_of "$t" "$m")
      case $m in
        seq)
          # shellcheck disable=SC2046 # word splitting of the fio options is intended
          measure_fio "$key" "$round" "$pid" 0 $(seq_args) --filename="$(big_file_of "$t")" ;;
        rand1 | rand4)
          mapfile -t EVICT_FILES < <(evict_list "$t")
          # shellcheck disable=SC2046
          measure_fio "$key" "$round" "$pid" 1 $(rand_args "${m#rand}") --filename="$(big_file_of "$t")" ;;
        small1) measure_small "$key" "$round" "$pid" "$(small_root_of "$t")" 1 ;;
        small4) measure_small "$key" "$round" "$pid" "$(small_root_of "$t")" "$SMALL_READERS" ;;
        walk) measure_walk "$key" "$round" "$pid" "$(small_root_of "$t")" ;;
      esac
    done
  done
}

# encrypt_dataset NAME SRC DST TIMED(0|1)
# With TIMED=1: ENCRYPT_RUNS cold runs under hyperfine (before each, the
# previous output is removed and caches dropped); the last run's output
# stays. Sets ENC[NAME_{mean,min,max,user,sys,rss_mib}]. With TIMED=0 one
# untimed run, for a dataset that is only read.
encrypt_dataset() {
  local name=$1 src=$2 dst=$3 timed=$4 cmd log=$LOG_DIR/encrypt-$1
  if ((!timed)); then
    "$CCE" dataset encrypt --key "$CCE_KEY" --output json "$src" "$dst" >"$log.json" 2>"$log.err" ||
      { tail -n 20 "$log.err" >&2; die "cce dataset encrypt $src failed (log: $log.err)"; }
    return 0
  fi
  cmd="$(printf '%q ' /usr/bin/time -f %M -a -o "$log-maxrss-kib.txt" \
    "$CCE" dataset encrypt --key "$CCE_KEY" --output json "$src" "$dst")"
  cmd+="> $(printf '%q' "$log-summary.json")"
  if ! hyperfine --style basic --runs "$ENCRYPT_RUNS" --command-name "cce dataset encrypt $name" \
    --prepare "rm -rf $(printf '%q' "$dst") && sync && echo 3 > /proc/sys/vm/drop_caches" \
    --export-csv "$log.csv" --export-json "$log-hyperfine.json" \
    "$cmd" >"$log-hyperfine.txt" 2>&1; then
    tail -n 20 "$log-hyperfine.txt" >&2
    die "cce dataset encrypt $src failed (log: $log-hyperfine.txt)"
  fi
  local mean user sys min max
  # CSV: command,mean,stddev,median,user,system,min,max (seconds)
  read -r mean user sys min max < <(awk -F, 'NR == 2 { print $(NF-6), $(NF-3), $(NF-2), $(NF-1), $NF }' "$log.csv")
  ENC[${name}_mean]="$(calc "$mean" 3)"
  ENC[${name}_min]="$(calc "$min" 3)"
  ENC[${name}_max]="$(calc "$max" 3)"
  ENC[${name}_user]="$(calc "$user" 3)"
  ENC[${name}_sys]="$(calc "$sys" 3)"
  ENC[${name}_rss_mib]="$(calc "$(sort -n "$log-maxrss-kib.txt" | tail -n 1) / 1024" 1)"
}

declare -A ENC=() # <big|small>_<mean|min|max|user|sys|rss_mib> of the timed encrypt runs

# copy_baseline SRC_DIR DST: the disk's ceiling for what encrypt does (read
# the source cold, write as many bytes, syncfs), timed the same way:
# ENCRYPT_RUNS cold runs of `cp -r` + `sync -f` under hyperfine. Sets
# ENC[copy_mean].
copy_baseline() {
  local src=$1 dst=$2 log=$LOG_DIR/copy-baseline
  if ! hyperfine --style basic --runs "$ENCRYPT_RUNS" --command-name "cp + syncfs" \
    --prepare "rm -rf $(printf '%q' "$dst") && sync && echo 3 > /proc/sys/vm/drop_caches" \
    --export-csv "$log.csv" \
    "cp -r --reflink=never $(printf '%q' "$src") $(printf '%q' "$dst") && sync -f $(printf '%q' "$dst")" \
    >"$log.txt" 2>&1; then
    tail -n 20 "$log.txt" >&2
    die "copy baseline failed (log: $log.txt)"
  fi
  ENC[copy_mean]="$(calc "$(awk -F, 'NR == 2 { print $(NF-6) }' "$log.csv")" 3)"
  rm -rf "$dst"
}

# ---- setup ----

mkdir -p "$LOG_DIR"
for mnt in "${ALL_MOUNTS[@]}"; do # left over from a run that was SIGKILLed
  if is_mounted "$mnt"; then fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"; fi
done
rm -rf --one-file-system "$DATA_DIR"
mkdir -p "$PLAIN_DIR" "$PLAIN_SMALL" "$CCE_MNT" "$CCE_SMALL_MNT" "$GC_CIPHER" "$GC_MNT" "$FLOOR_MNT" "$ZEROS_MNT"

LOAD_START=$(loadavg_1m)
if awk -v l="$LOAD_START" 'BEGIN { exit !(l > 0.5) }'; then
  echo "run.sh: warning: load average is $LOAD_START; other work on this machine skews the figures" >&2
fi
echo "decryptfs bench: ${SELECTED[*]}; ${SIZE_LABEL} file, $SMALL_FILES small files ($SMALL_MIB_LABEL MiB)," \
  "${RUNTIME_S}s random runs, $REPEAT rounds; work dir $WORK_DIR ($FS_TYPE on $FS_SOURCE)" >&2

# What was measured: binaries, their commit, gocryptfs.
first_line() { "$@" 2>&1 | head -n 1 | tr -d '\r' || true; }
CCE_VERSION=$(first_line "$CCE" --version)
GC_VERSION=$(first_line gocryptfs -version)
GIT_COMMIT='' GIT_DIRTY=''
if git -C "$BIN_DIR" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  GIT_COMMIT=$(git -C "$BIN_DIR" rev-parse HEAD 2>/dev/null || true)
  if git -C "$BIN_DIR" diff --quiet HEAD -- 2>/dev/null; then GIT_DIRTY=false; else GIT_DIRTY=true; fi
elif git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # A bin dir outside the tree (e.g. a copied build): record the script's
  # checkout, labelled as such.
  GIT_COMMIT="script-checkout:$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || true)"
fi
CCE_SHA256=$(sha256sum "$CCE" | cut -c1-16)
DECRYPTFS_SHA256=$(sha256sum "$DECRYPTFS" | cut -c1-16)

"$CCE" key generate --out "$CCE_KEY" >"$LOG_DIR/key-generate.log" 2>&1 ||
  { cat "$LOG_DIR/key-generate.log" >&2; die "cce key generate failed"; }

if ((NEED_BIG)); then
  progress "writing ${SIZE_MIB} MiB of random plaintext"
  head -c "$SIZE_BYTES" /dev/urandom >"$PLAIN_FILE"
fi
if ((NEED_SMALL)); then
  progress "writing $SMALL_FILES small files ($SMALL_MIB_LABEL MiB of random bytes, seed $SMALL_SEED)"
  for ((d = 0; d < SMALL_DIRS; d++)); do mkdir -p "$PLAIN_SMALL/$(printf 'd%03d' "$d")"; done
  for ((i = 0; i < SMALL_FILES; i++)); do
    printf -v p 'd%03d/f%05d.bin' $((i / 100)) "$i" # small_file_path, without a subshell
    head -c "${SMALL_SIZES[i]}" /dev/urandom >"$PLAIN_SMALL/$p"
    printf '%s\0' "$p"
  done >"$SMALL_LIST"
fi
sync

ENC_TIMED=0
sel encrypt && ENC_TIMED=1
if ((NEED_BIG)); then
  if ((ENC_TIMED)); then progress "cce dataset encrypt ${SIZE_LABEL} file, $ENCRYPT_RUNS cold run(s) (hyperfine)"; fi
  ((ENC_TIMED || NEED_CCE_BIG)) && encrypt_dataset big "$PLAIN_DIR" "$CCE_ENC" "$ENC_TIMED"
  if ((ENC_TIMED)); then
    progress "baseline: cp + syncfs of the ${SIZE_LABEL} file, $ENCRYPT_RUNS cold run(s) (hyperfine)"
    copy_baseline "$PLAIN_DIR" "$DATA_DIR/copy-baseline"
  fi
fi
if ((NEED_SMALL)); then
  if ((ENC_TIMED)); then progress "cce dataset encrypt $SMALL_FILES small files, $ENCRYPT_RUNS cold run(s) (hyperfine)"; fi
  ((ENC_TIMED || NEED_CCE_SMALL)) && encrypt_dataset small "$PLAIN_SMALL" "$CCE_SMALL_ENC" "$ENC_TIMED"
fi

# The dataset's format version and block size, from an object header.
FORMAT_VERSION=null BLOCK_SIZE=null HEADER_OF=''
for enc in "$CCE_ENC" "$CCE_SMALL_ENC"; do
  [[ -d $enc/objects ]] || continue
  obj=$(find "$enc/objects" -type f -print -quit)
  [[ -n $obj ]] || continue
  if info=$(header_info "$obj" 2>"$LOG_DIR/header.err"); then
    read -r FORMAT_VERSION BLOCK_SIZE <<<"$info"
    HEADER_OF=${obj#"$DATA_DIR"/}
  else
    echo "run.sh: warning: $(cat "$LOG_DIR/header.err")" >&2
  fi
  break
done
[[ -n $HEADER_OF ]] || echo "run.sh: warning: no cce object header found; format version and block size not recorded" >&2

GC_OPTS=(-fg -q -ro)
GC_FLAGS=''
if ((NEED_GC)); then
  progress "gocryptfs: init, copy plaintext in, remount read-only"
  head -c 32 /dev/urandom | base64 -w0 >"$GC_PASS"
  gocryptfs -init -q -passfile "$GC_PASS" "$GC_CIPHER" >"$LOG_DIR/gocryptfs-init.log" 2>&1 ||
    { cat "$LOG_DIR/gocryptfs-init.log" >&2; die "gocryptfs -init failed"; }
  GC_FLAGS=$(tr -d ' \n\t' <"$GC_CIPHER/gocryptfs.conf" | sed -n 's/.*"FeatureFlags":\[\([^]]*\)\].*/\1/p' | tr -d '"')
  start_fuse "$GC_MNT" "$LOG_DIR/gocryptfs-write.log" gocryptfs -fg -q -passfile "$GC_PASS" "$GC_CIPHER" "$GC_MNT"
  if ((NEED_CCE_BIG)); then cp "$PLAIN_FILE" "$GC_MNT/$DATA_NAME"; fi
  if ((NEED_CCE_SMALL)); then cp -a "$PLAIN_SMALL" "$GC_MNT/small"; fi
  stop_fuse "$GC_MNT" || die "gocryptfs did not unmount cleanly after the copy (log: $LOG_DIR/gocryptfs-write.log)"
  start_fuse "$GC_MNT" "$LOG_DIR/gocryptfs.log" gocryptfs "${GC_OPTS[@]}" -passfile "$GC_PASS" "$GC_CIPHER" "$GC_MNT"
  GC_PID=$FUSE_PID
  GC_BDI=$(bdi_of "$GC_MNT")
  GC_RA_INITIAL=$(cat "$GC_BDI/read_ahead_kb")
  ((GC_RA_INITIAL == RA_DEFAULT_KB)) ||
    echo "run.sh: warning: the gocryptfs mount came up with read_ahead_kb $GC_RA_INITIAL, not $RA_DEFAULT_KB" >&2
  GC_MOUNT_OPTS=$(findmnt -n -o OPTIONS --mountpoint "$GC_MNT" | tr -d '\042\134' || echo "?")
  if ((NEED_CCE_BIG)); then
    [[ $(stat -c %s "$GC_MNT/$DATA_NAME") == "$SIZE_BYTES" ]] || die "gocryptfs view of $DATA_NAME has the wrong size"
  fi
fi

# cce-decryptfs runs with its default options (threads, cache), in the
# foreground as our child so that the script owns the daemon's pid; the
# daemonized mode runs the same code.
CCE_OPTS=(--key-file "$CCE_KEY" --foreground)
CCE_RA_KB=0 CCE_SMALL_RA_KB=0 CCE_PID='' CCE_SMALL_PID=''
if ((NEED_CCE_BIG)); then
  progress "mounting cce-decryptfs (${SIZE_LABEL} file)"
  start_fuse "$CCE_MNT" "$LOG_DIR/cce-decryptfs.log" "$DECRYPTFS" "${CCE_OPTS[@]}" "$CCE_ENC" "$CCE_MNT"
  CCE_PID=$FUSE_PID
  [[ -f $CCE_MNT/$DATA_NAME ]] || die "cce-decryptfs view has no $DATA_NAME (has: $(find "$CCE_MNT" -mindepth 1 -maxdepth 2 | head -5 | tr '\n' ' '))"
  [[ $(stat -c %s "$CCE_MNT/$DATA_NAME") == "$SIZE_BYTES" ]] || die "cce-decryptfs view of $DATA_NAME has the wrong size"
  CCE_RA_KB=$(cce_ra_kb "$CCE_MNT")
  CCE_MOUNT_OPTS=$(findmnt -n -o OPTIONS --mountpoint "$CCE_MNT" | tr -d '\042\134' || echo "?")
fi
if ((NEED_CCE_SMALL)); then
  progress "mounting cce-decryptfs (small-file tree)"
  start_fuse "$CCE_SMALL_MNT" "$LOG_DIR/cce-decryptfs-small.log" "$DECRYPTFS" "${CCE_OPTS[@]}" "$CCE_SMALL_ENC" "$CCE_SMALL_MNT"
  CCE_SMALL_PID=$FUSE_PID
  [[ -f $CCE_SMALL_MNT/$(small_file_path 0) ]] || die "cce-decryptfs small-tree view has no $(small_file_path 0)"
  CCE_SMALL_RA_KB=$(cce_ra_kb "$CCE_SMALL_MNT")
  CCE_MOUNT_OPTS=${CCE_MOUNT_OPTS:-$(findmnt -n -o OPTIONS --mountpoint "$CCE_SMALL_MNT" | tr -d '\042\134' || echo "?")}
fi

# The floor servers, for the random reads (see RAND_TARGETS).
FLOOR_PID='' ZEROS_PID='' FLOOR_OBJECT='' FLOOR_SKIPPED=''
if sel rand1 || sel rand4; then
  FLOOR=$BIN_DIR/decryptfs_floor
  objects=()
  [[ -d $CCE_ENC/objects ]] && mapfile -t objects < <(find "$CCE_ENC/objects" -type f)
  if [[ ! -x $FLOOR ]]; then
    FLOOR_SKIPPED="$FLOOR not found (make build builds it from bench/decryptfs/fuse_floor.cc)"
  elif ((${#objects[@]} != 1)); then
    FLOOR_SKIPPED="expected one ciphertext object under $CCE_ENC/objects, found ${#objects[@]}"
  fi
fi
if [[ -n $FLOOR_SKIPPED ]]; then
  echo "run.sh: warning: the floor servers are not measured: $FLOOR_SKIPPED" >&2
elif sel rand1 || sel rand4; then
  FLOOR_OBJECT=${objects[0]}
  progress "mounting the floor servers (decryptfs_floor: libfuse + disk, and libfuse alone)"
  start_fuse "$FLOOR_MNT" "$LOG_DIR/floor.log" "$FLOOR" --mode disk --backing "$FLOOR_OBJECT" --size "$SIZE_BYTES" "$FLOOR_MNT"
  FLOOR_PID=$FUSE_PID
  start_fuse "$ZEROS_MNT" "$LOG_DIR/zeros.log" "$FLOOR" --mode zeros --size "$SIZE_BYTES" "$ZEROS_MNT"
  ZEROS_PID=$FUSE_PID
fi

# ---- measurements ----

sel seq && run_rounds seq "fio seq read ${SIZE_LABEL} bs=1M"
sel rand1 && run_rounds rand1 "fio randread 4k 1 job ${RUNTIME_S}s"
sel rand4 && run_rounds rand4 "fio randread 4k 4 jobs ${RUNTIME_S}s"
sel small && run_rounds small1 "small files, 1 reader"
sel small && run_rounds small4 "small files, $SMALL_READERS readers"
sel walk && run_rounds walk "metadata walk"

# ---- where the time goes ----
# After the measured rounds, one more run of a measurement on one target
# with `perf record` on its daemon, counted in no figure: the daemon's CPU
# per operation (its own /proc ticks over the run) split by perf_split
# (lib.sh). Random reads: cce and the floor; small files: cce.
declare -A PROF=() # "<measure>_<target>" -> "cpu_us_per_op kick sched kernel crypto fuse libc own"
PROFILE_NOTE=''
profile_one() { # measure target
  local m=$1 t=$2 pid data ops=0 c0 c1 rec out line
  pid=$(daemon_pid_of "$t" "$m")
  [[ -n $pid ]] || return 0
  progress "profiling the daemon: ${LABEL_OF[$m]} on ${TARGET_NAME[$t]} (perf, not counted)"
  data=$LOG_DIR/perf-${m}_$t.data
  prepare_target "$t"
  drop_caches
  if [[ $m == rand1 ]]; then
    mapfile -t EVICT_FILES < <(evict_list "$t")
    start_evictor "${EVICT_FILES[@]}"
  fi
  perf record -F 1999 -p "$pid" -o "$data" >/dev/null 2>"$data.err" &
  rec=$!
  sleep 0.5 # perf has attached
  c0=$(cpu_ticks "$pid")
  case $m in
    rand1)
      out=$LOG_DIR/perf-${m}_$t.fio
      # shellcheck disable=SC2046 # word splitting of the fio options is intended
      if fio --name="prof-$t" --readonly --ioengine=psync --invalidate=1 --size="$SIZE_BYTES" \
        --output-format=terse --terse-version=3 $(rand_args 1) --filename="$(big_file_of "$t")" >"$out" 2>"$out.err"; then
        line=$(grep '^3;' "$out" | tail -n 1)
        IFS=';' read -r -a f <<<"$line"
        ops=$((f[5] / 4))
      fi ;;
    small1)
      if (cd "$(small_root_of "$t")" && xargs -0 -n "$SMALL_BATCH" cat -- <"$SMALL_LIST" >/dev/null) 2>/dev/null; then
        ops=$SMALL_FILES
      fi ;;
  esac
  c1=$(cpu_ticks "$pid")
  kill -INT "$rec" 2>/dev/null || true
  wait "$rec" 2>/dev/null || true
  stop_evictor
  if ((ops == 0)) || [[ ! -s $data ]]; then
    echo "run.sh: warning: the profile of ${LABEL_OF[$m]} on $t failed (logs: $data.err)" >&2
    return 0
  fi
  PROF[${m}_$t]="$(calc "($c1 - $c0) * 1000000 / $CLK_TCK / $ops" 1) $(perf report -i "$data" -q --stdio --sort dso,sym 2>/dev/null | perf_split)"
}
declare -A LABEL_OF=([rand1]="rand 4k 1 job" [small1]="small files, 1 reader")
if ((PROFILE)); then
  if ! command -v perf >/dev/null; then
    PROFILE_NOTE="not profiled: perf not found (apt-get install -y linux-perf)"
  else
    if sel rand1; then
      profile_one rand1 cce
      [[ -n $FLOOR_PID ]] && profile_one rand1 floor
    fi
    sel small && profile_one small1 cce
  fi
fi

progress "peak RSS, verifying the plaintext views, unmounting"
CCE_HWM_MIB=null CCE_THREADS=null CCE_SMALL_HWM_MIB=null GC_HWM_MIB=null
if ((NEED_CCE_BIG)); then
  CCE_HWM_MIB=$(calc "$(vm_hwm_kib "$CCE_PID") / 1024" 1)
  CCE_THREADS=$(threads_of "$CCE_PID")
  cmp -s "$PLAIN_FILE" "$CCE_MNT/$DATA_NAME" || die "cce-decryptfs returned different bytes than the plaintext of $DATA_NAME"
  cmp -s "$PLAIN_FILE" "$GC_MNT/$DATA_NAME" || die "gocryptfs returned different bytes than the plaintext of $DATA_NAME"
fi
if ((NEED_CCE_SMALL)); then
  CCE_SMALL_HWM_MIB=$(calc "$(vm_hwm_kib "$CCE_SMALL_PID") / 1024" 1)
  [[ $CCE_THREADS != null ]] || CCE_THREADS=$(threads_of "$CCE_SMALL_PID")
  diff -rq "$PLAIN_SMALL" "$CCE_SMALL_MNT" >"$LOG_DIR/diff-cce.txt" 2>&1 ||
    die "cce-decryptfs's view of the small-file tree differs from the plaintext (log: $LOG_DIR/diff-cce.txt)"
  diff -rq "$PLAIN_SMALL" "$GC_MNT/small" >"$LOG_DIR/diff-gocryptfs.txt" 2>&1 ||
    die "gocryptfs's view of the small-file tree differs from the plaintext (log: $LOG_DIR/diff-gocryptfs.txt)"
fi
((NEED_GC)) && GC_HWM_MIB=$(calc "$(vm_hwm_kib "$GC_PID") / 1024" 1)
for mnt in "$FLOOR_MNT" "$ZEROS_MNT"; do
  [[ -n ${MOUNT_PID[$mnt]:-} ]] || continue
  stop_fuse "$mnt" || echo "run.sh: warning: decryptfs_floor at $mnt did not exit cleanly" >&2
done
CCE_EXIT=0
for mnt in "$CCE_MNT" "$CCE_SMALL_MNT"; do
  [[ -n ${MOUNT_PID[$mnt]:-} ]] || continue
  stop_fuse "$mnt" || CCE_EXIT=$?
done
if ((NEED_GC)); then
  restore_gc_ra
  stop_fuse "$GC_MNT" || true
fi
((CCE_EXIT == 0)) || echo "run.sh: warning: cce-decryptfs exited with status $CCE_EXIT on unmount" >&2

# ---- report ----

LOAD_END=$(loadavg_1m)
declare -A MED=() # key -> median of the samples
for key in "${!SAMPLES[@]}"; do
  # shellcheck disable=SC2086 # the samples are a space-separated list
  MED[$key]=$(median ${SAMPLES[$key]})
done

# Per measure: unit, decimals, label, target, JSON name.
declare -A UNIT=([seq]="MB/s" [rand1]=IOPS [rand4]=IOPS [small1]="MiB/s" [small4]="MiB/s" [walk]="entries/s")
declare -A DECIMALS=([seq]=1 [rand1]=0 [rand4]=0 [small1]=1 [small4]=1 [walk]=0)
declare -A LABEL=(
  [seq]="seq read ${SIZE_LABEL}"
  [rand1]="rand 4k 1 job"
  [rand4]="rand 4k 4 jobs"
  [small1]="small files ($SMALL_FILES, 4-64 KiB, $SMALL_MIB_LABEL MiB) read whole, 1 reader"
  [small4]="small files read whole, $SMALL_READERS readers"
  [walk]="metadata walk ($SMALL_ENTRIES entries)"
)
declare -A TARGET=([seq]=$TARGET_SEQ [rand1]=$TARGET_RAND1 [rand4]=$TARGET_RAND4 [small1]=$TARGET_SMALL1 [small4]=$TARGET_SMALL4 [walk]=$TARGET_WALK)
declare -A JSON_NAME=([seq]=seq_read_mbps [rand1]=rand4k_1job_iops [rand4]=rand4k_4jobs_iops
  [small1]=small_files_1reader_mibps [small4]=small_files_${SMALL_READERS}readers_mibps [walk]=metadata_walk_entries_per_s)
declare -A CHECK_NAME=([seq]=seq_read [rand1]=rand4k_1job [rand4]=rand4k_4jobs
  [small1]=small_files_1reader [small4]=small_files_${SMALL_READERS}readers [walk]=metadata_walk)
MEASURED=()
for m in seq rand1 rand4 small1 small4 walk; do [[ -n ${SAMPLES[${m}_cce]:-} ]] && MEASURED+=("$m"); done

fmt_m() { calc "$1" "${DECIMALS[$2]}"; } # value measure
declare -A GC_BEST=() GC_BEST_RA=() RATIO=() VERDICT=()
for m in "${MEASURED[@]}"; do
  read -r best best_ra r < <(vs_best "${MED[${m}_cce]}" "${MED[${m}_gc128]}" "${MED[${m}_gc1024]}")
  GC_BEST[$m]=$best GC_BEST_RA[$m]=$best_ra RATIO[$m]=$r
  VERDICT[$m]=$(verdict "${RATIO[$m]}" ">=" "${TARGET[$m]}")
done
ra_label() { if (($1 >= 1024)); then echo "$(($1 / 1024)) MiB"; else echo "$1 KiB"; fi; }

for m in "${MEASURED[@]}"; do
  u=${UNIT[$m]}
  keep=''
  [[ ${TARGET[$m]} == 1.0 ]] && keep=', keep'
  echo "${LABEL[$m]}: plain $(fmt_m "${MED[${m}_plain]}" "$m") $u, cce $(fmt_m "${MED[${m}_cce]}" "$m") $u," \
    "gocryptfs $(fmt_m "${MED[${m}_gc128]}" "$m") $u at 128 KiB read-ahead / $(fmt_m "${MED[${m}_gc1024]}" "$m") $u at 1 MiB;" \
    "cce/gocryptfs(best, $(ra_label "${GC_BEST_RA[$m]}")) = ${RATIO[$m]} (target >= ${TARGET[$m]}$keep) ${VERDICT[$m]}"
done

# A target that asks for more than the plain disk read of the same file in
# the same run: a hint that the disk, not the file system, set the figure.
# Only a hint: under this VM the disk's rounds scatter widely (host caching),
# so a slow plain round can trigger it; read the rounds below.
for m in "${MEASURED[@]}"; do
  want=$(calc "${TARGET[$m]} * ${GC_BEST[$m]}" "${DECIMALS[$m]}")
  if [[ $(verdict "${MED[${m}_plain]}" ">=" "$want") != PASS ]]; then
    echo "${LABEL[$m]}: the target (${TARGET[$m]} x gocryptfs = $want ${UNIT[$m]}) is above the plain disk in this run" \
      "($(fmt_m "${MED[${m}_plain]}" "$m") ${UNIT[$m]}, median): disk-bound in this run, see the rounds; cce/plain $(ratio "${MED[${m}_cce]}" "${MED[${m}_plain]}")"
  fi
done

# The floor: what the random-read targets ask of any libfuse server here.
declare -A FLOOR_RATIO=() ZEROS_RATIO=() CCE_OVER_FLOOR=()
[[ -n $FLOOR_SKIPPED ]] && echo "random-read floor: not measured: $FLOOR_SKIPPED"
for m in "${MEASURED[@]}"; do
  [[ $m == rand* && -n ${MED[${m}_floor]:-} ]] || continue
  FLOOR_RATIO[$m]=$(ratio "${MED[${m}_floor]}" "${GC_BEST[$m]}")
  ZEROS_RATIO[$m]=$(ratio "${MED[${m}_zeros]}" "${GC_BEST[$m]}")
  CCE_OVER_FLOOR[$m]=$(ratio "${MED[${m}_cce]}" "${MED[${m}_floor]}")
  note="above the target"
  if [[ $(verdict "${FLOOR_RATIO[$m]}" ">=" "${TARGET[$m]}") != PASS ]]; then
    note="below the target: in this run a crypto-free libfuse server doing these reads did not reach it"
  fi
  echo "${LABEL[$m]} floor: libfuse + the same O_DIRECT reads, no decryption $(fmt_m "${MED[${m}_floor]}" "$m") ${UNIT[$m]}" \
    "= ${FLOOR_RATIO[$m]}x gocryptfs(best) ($note); libfuse alone (zeros) $(fmt_m "${MED[${m}_zeros]}" "$m") ${UNIT[$m]}" \
    "= ${ZEROS_RATIO[$m]}x; cce/floor = ${CCE_OVER_FLOOR[$m]}"
done

# Where the daemon's CPU goes (the profile runs above), and what of it is
# cce's own: the kernel's part is the FUSE round trip and the disk read that
# any FUSE file system reading these bytes pays (the floor shows how much).
share_of() { calc "$1 * $2 / 100" 1; } # cpu pct
prof_line() { # key unit
  local cpu kick sched kern crypto fuse libc own
  read -r cpu kick sched kern crypto fuse libc own <<<"${PROF[$1]}"
  share() { share_of "$cpu" "$1"; }
  echo "$cpu us of daemon CPU per $2 = disk kick (VM exit) $(share "$kick"), thread wake-ups $(share "$sched")," \
    "rest of the kernel $(share "$kern"), OpenSSL $(share "$crypto"), libfuse $(share "$fuse"), libc $(share "$libc"), own code $(share "$own")"
}
if ((PROFILE)) && [[ -n $PROFILE_NOTE ]]; then echo "where the time goes: $PROFILE_NOTE"; fi
if [[ -n ${PROF[rand1_cce]:-} ]]; then
  echo "where the time goes, ${LABEL[rand1]} (perf on the daemon, one more run):"
  echo "  cce: $(prof_line rand1_cce read); $(calc "1000000 / ${MED[rand1_cce]}" 1) us per read end to end (1 / IOPS)"
  if [[ -n ${PROF[rand1_floor]:-} ]]; then
    echo "  floor (same reads, no crypto): $(prof_line rand1_floor read)"
    read -r c_cpu _ <<<"${PROF[rand1_cce]}"
    read -r f_cpu _ <<<"${PROF[rand1_floor]}"
    echo "  cce's cost above the floor: $(calc "$c_cpu - $f_cpu" 1) us of CPU per read; the rest is the FUSE round trip and the disk read, which the floor pays too"
  fi
fi
if [[ -n ${PROF[small1_cce]:-} ]]; then
  echo "where the time goes, ${LABEL[small1]} (perf on the daemon, one more pass):"
  echo "  cce: $(prof_line small1_cce file); $(calc "1000000 * $SMALL_BYTES / (${MED[small1_cce]} * 1048576 * $SMALL_FILES)" 0) us per file end to end"
fi

V_ENC='' V_RSS=''
if ((ENC_TIMED)); then
  ENC_MBPS=$(calc "$SIZE_BYTES / ${ENC[big_mean]} / 1000000" 1)
  V_ENC=$(verdict "$ENC_MBPS" ">=" "$TARGET_ENCRYPT_MBPS")
  ENC_SMALL_MBPS=$(calc "$SMALL_BYTES / ${ENC[small_mean]} / 1000000" 1)
  ENC_SMALL_FPS=$(calc "$SMALL_FILES / ${ENC[small_mean]}" 0)
  COPY_MBPS=$(calc "$SIZE_BYTES / ${ENC[copy_mean]} / 1000000" 1)
  ENC_OVER_COPY=$(calc "$ENC_MBPS / $COPY_MBPS" 2)
  echo "encrypt ${SIZE_LABEL} file: $ENC_MBPS MB/s (target >= $TARGET_ENCRYPT_MBPS) $V_ENC;" \
    "cp + syncfs of the same file $COPY_MBPS MB/s (the disk's ceiling), encrypt/copy = $ENC_OVER_COPY"
  echo "encrypt small-file tree ($SMALL_FILES files, $SMALL_MIB_LABEL MiB): $ENC_SMALL_MBPS MB/s, $ENC_SMALL_FPS files/s (no target)"
fi
RSS_MAX=$(max_of "${CCE_HWM_MIB/null/0}" "${CCE_SMALL_HWM_MIB/null/0}")
if ((NEED_CCE_BIG || NEED_CCE_SMALL)); then
  V_RSS=$(verdict "$RSS_MAX" "<=" "$TARGET_RSS_MIB")
  echo "decryptfs peak RSS: $RSS_MAX MiB (target <= $TARGET_RSS_MIB) $V_RSS"
fi

# Diagnostics per key, over all rounds.
spread() { echo "${SAMPLES[$1]# }"; }
per_op_dev_kib() { # disk KiB read per operation (read, file, entry)
  if [[ -n $DEV_STAT && ${OPS[$1]:-0} -gt 0 ]]; then calc "${DEV_KIB[$1]} / ${OPS[$1]}" 1; else echo null; fi
}
per_byte_dev() { # disk bytes read per plaintext byte
  if [[ -n $DEV_STAT && ${BYTES[$1]:-0} -gt 0 ]]; then calc "${DEV_KIB[$1]} * 1024 / ${BYTES[$1]}" 2; else echo null; fi
}
# Daemon CPU; null for the plain disk, which has no daemon.
cpu_us_per_op() {
  if [[ $1 != *_plain ]] && ((${OPS[$1]:-0} > 0)); then calc "${CPU_TICKS[$1]} * 1000000 / $CLK_TCK / ${OPS[$1]}" 1; else echo null; fi
}
cpu_ms_per_mib() {
  if [[ $1 != *_plain ]] && ((${BYTES[$1]:-0} > 0)); then calc "${CPU_TICKS[$1]} * 1000 / $CLK_TCK / (${BYTES[$1]} / 1048576)" 2; else echo null; fi
}
# "<what>: plain A, cce B, gocryptfs@128KiB C, gocryptfs@1MiB D" of FN applied to <measure>_<target>
line4() { # label fn measure [unit]
  local out="$1:" t sep=' ' targets=("${TARGETS[@]}")
  [[ $3 == rand* && -n ${SAMPLES[${3}_floor]:-} ]] && targets=("${RAND_TARGETS[@]}")
  for t in "${targets[@]}"; do
    out+="$sep${TARGET_NAME[$t]} $($2 "${3}_$t")${4:-}"
    sep=', '
  done
  echo "$out"
}
line_daemons() { # label fn measure unit
  echo "$1: cce $($2 "${3}_cce") $4, gocryptfs@128KiB $($2 "${3}_gc128") $4, gocryptfs@1MiB $($2 "${3}_gc1024") $4"
}

echo "details (medians of $REPEAT rounds; MB = 10^6 bytes, MiB = 2^20):"
for m in "${MEASURED[@]}"; do
  echo "  ${LABEL[$m]}: cce/plain $(ratio "${MED[${m}_cce]}" "${MED[${m}_plain]}"), cce/gocryptfs@128KiB $(ratio "${MED[${m}_cce]}" "${MED[${m}_gc128]}"), cce/gocryptfs@1MiB $(ratio "${MED[${m}_cce]}" "${MED[${m}_gc1024]}"); 1-min load at start ${LOAD_AT[$m]}"
  echo "    $(line4 "rounds, ${UNIT[$m]}" spread "$m")"
  case $m in
    seq)
      echo "    $(line4 "disk bytes read per plaintext byte" per_byte_dev "$m")"
      echo "    $(line_daemons "daemon CPU" cpu_ms_per_mib "$m" "ms/MiB")" ;;
    rand*)
      echo "    $(line4 "disk KiB read per 4 KiB read" per_op_dev_kib "$m")"
      echo "    $(line_daemons "daemon CPU per 4 KiB read" cpu_us_per_op "$m" us)"
      [[ -n ${SAMPLES[${m}_floor]:-} ]] &&
        echo "    floor daemon CPU per 4 KiB read: floor $(cpu_us_per_op "${m}_floor") us, zeros $(cpu_us_per_op "${m}_zeros") us" ;;
    small*)
      echo "    $(line4 "disk bytes read per plaintext byte" per_byte_dev "$m")"
      echo "    $(line_daemons "daemon CPU per file" cpu_us_per_op "$m" us)" ;;
    walk)
      echo "    $(line4 "disk KiB read per entry" per_op_dev_kib "$m")"
      echo "    $(line_daemons "daemon CPU per entry" cpu_us_per_op "$m" us)" ;;
  esac
done
if ((ENC_TIMED)); then
  echo "  encrypt ${SIZE_LABEL} file: mean ${ENC[big_mean]}s (min ${ENC[big_min]}s, max ${ENC[big_max]}s) over $ENCRYPT_RUNS runs, user ${ENC[big_user]}s sys ${ENC[big_sys]}s, peak RSS ${ENC[big_rss_mib]} MiB"
  echo "  encrypt small-file tree: mean ${ENC[small_mean]}s (min ${ENC[small_min]}s, max ${ENC[small_max]}s), user ${ENC[small_user]}s sys ${ENC[small_sys]}s, peak RSS ${ENC[small_rss_mib]} MiB"
fi
echo "  dataset: format version $FORMAT_VERSION, block size $BLOCK_SIZE bytes (header of ${HEADER_OF:-none})"
if ((NEED_CCE_BIG || NEED_CCE_SMALL)); then
  echo "  cce-decryptfs: 'cce-decryptfs --key-file FILE --foreground DATASET MNT' (default options otherwise), $CCE_THREADS threads, FUSE read_ahead_kb $CCE_RA_KB (large file) / $CCE_SMALL_RA_KB (tree), peak RSS $CCE_HWM_MIB MiB (large file) / $CCE_SMALL_HWM_MIB MiB (tree), mount options $CCE_MOUNT_OPTS"
fi
if ((NEED_GC)); then
  echo "  gocryptfs: $GC_VERSION; mounted 'gocryptfs ${GC_OPTS[*]} -passfile FILE' (default options otherwise; feature flags $GC_FLAGS), mount options $GC_MOUNT_OPTS; read_ahead_kb $GC_RA_INITIAL as mounted, set to $RA_DEFAULT_KB / $RA_RAISED_KB per run; peak RSS $GC_HWM_MIB MiB"
fi
echo "  binaries: $BIN_DIR (cce: ${CCE_VERSION:-?}; commit ${GIT_COMMIT:-unknown}${GIT_DIRTY:+, uncommitted changes: $GIT_DIRTY}; sha256 cce $CCE_SHA256, cce-decryptfs $DECRYPTFS_SHA256)"
echo "  machine: $(nproc) CPUs, 1-min load average $LOAD_START at start, $LOAD_END at end"

# ---- JSON ----

check() { # name value op target verdict
  printf '{"name":"%s","value":%s,"op":"%s","target":%s,"pass":%s}' "$1" "$2" "$3" "$4" "$(json_bool "$5")"
}
num_or_null() { if [[ -n ${1:-} ]]; then echo "$1"; else echo null; fi; }
json_targets() { # fn measure -> {"plain":..,"cce":..,"gocryptfs_ra128kb":..,"gocryptfs_ra1mb":..}
  printf '{"plain":%s,"cce":%s,"gocryptfs_ra128kb":%s,"gocryptfs_ra1mb":%s}' \
    "$($1 "${2}_plain")" "$($1 "${2}_cce")" "$($1 "${2}_gc128")" "$($1 "${2}_gc1024")"
}
med_of() { echo "${MED[$1]}"; }
samples_json() { echo "[$(spread "$1" | tr ' ' ,)]"; }
JSON=$(
  printf '{"benchmark":"decryptfs","run_id":"%s","selected":[%s],' "$RUN_ID" "$(printf '"%s",' "${SELECTED[@]}" | sed 's/,$//')"
  printf '"host":{"kernel":%s,"cpus":%s,"fs_type":%s,"device":%s,"loadavg_1m":{"start":%s,' \
    "$(json_str "$(uname -r)")" "$(nproc)" "$(json_str "$FS_TYPE")" "$(json_str "$FS_SOURCE")" "$LOAD_START"
  for m in "${MEASURED[@]}"; do printf '"%s":%s,' "$m" "${LOAD_AT[$m]}"; done
  printf '"end":%s}},' "$LOAD_END"
  printf '"params":{"quick":%s,"size_mib":%s,"runtime_s":%s,"repeat":%s,"encrypt_runs":%s,"small_files":%s,"small_bytes":%s,"small_seed":%s,"small_readers":%s,"evict_interval_s":%s},' \
    "$( ((QUICK)) && echo true || echo false)" "$SIZE_MIB" "$RUNTIME_S" "$REPEAT" "$ENCRYPT_RUNS" "$SMALL_FILES" "$SMALL_BYTES" "$SMALL_SEED" "$SMALL_READERS" "$EVICT_INTERVAL_S"
  printf '"binaries":{"bin_dir":%s,"cce_version":%s,"git_commit":%s,"git_dirty":%s,"cce_sha256_16":"%s","decryptfs_sha256_16":"%s"},' \
    "$(json_str "$BIN_DIR")" "$(json_str "$CCE_VERSION")" "$(json_str "$GIT_COMMIT")" "$(num_or_null "$GIT_DIRTY")" "$CCE_SHA256" "$DECRYPTFS_SHA256"
  printf '"dataset":{"format_version":%s,"block_size":%s,"header_of":%s},' "$FORMAT_VERSION" "$BLOCK_SIZE" "$(json_str "$HEADER_OF")"
  if ((NEED_GC)); then
    printf '"gocryptfs":{"version":%s,"options":%s,"feature_flags":%s,"mount_options":%s,"read_ahead_kb_as_mounted":%s,"read_ahead_kb_measured":[%s,%s],"peak_rss_mib":%s},' \
      "$(json_str "$GC_VERSION")" "$(json_str "${GC_OPTS[*]} -passfile FILE")" "$(json_str "$GC_FLAGS")" "$(json_str "$GC_MOUNT_OPTS")" \
      "$GC_RA_INITIAL" "$RA_DEFAULT_KB" "$RA_RAISED_KB" "$GC_HWM_MIB"
  fi
  if ((NEED_CCE_BIG || NEED_CCE_SMALL)); then
    printf '"cce_decryptfs":{"options":"--key-file FILE --foreground","threads":%s,"read_ahead_kb":{"large_file":%s,"tree":%s},"peak_rss_mib":{"large_file":%s,"tree":%s},"mount_options":%s},' \
      "$CCE_THREADS" "$CCE_RA_KB" "$CCE_SMALL_RA_KB" "$CCE_HWM_MIB" "$CCE_SMALL_HWM_MIB" "$(json_str "$CCE_MOUNT_OPTS")"
  fi
  printf '"results":{'
  sep=''
  for m in "${MEASURED[@]}"; do
    printf '%s"%s":{"plain":%s,"cce":%s,"gocryptfs_ra128kb":%s,"gocryptfs_ra1mb":%s,"gocryptfs_best":%s,"gocryptfs_best_ra_kb":%s,"cce_over_gocryptfs":%s}' \
      "$sep" "${JSON_NAME[$m]}" "${MED[${m}_plain]}" "${MED[${m}_cce]}" "${MED[${m}_gc128]}" "${MED[${m}_gc1024]}" \
      "${GC_BEST[$m]}" "${GC_BEST_RA[$m]}" "${RATIO[$m]}"
    sep=,
    if [[ -n ${FLOOR_RATIO[$m]:-} ]]; then
      printf ',"%s_floor":{"floor":%s,"zeros":%s,"floor_over_gocryptfs":%s,"zeros_over_gocryptfs":%s,"cce_over_floor":%s}' \
        "${JSON_NAME[$m]}" "${MED[${m}_floor]}" "${MED[${m}_zeros]}" "${FLOOR_RATIO[$m]}" "${ZEROS_RATIO[$m]}" "${CCE_OVER_FLOOR[$m]}"
    fi
  done
  if ((ENC_TIMED)); then
    printf '%s"encrypt_mbps":%s,"copy_syncfs_mbps":%s,"encrypt_over_copy":%s,"encrypt_small_tree_mbps":%s,"encrypt_small_tree_files_per_s":%s' "$sep" "$ENC_MBPS" "$COPY_MBPS" "$ENC_OVER_COPY" "$ENC_SMALL_MBPS" "$ENC_SMALL_FPS"
    sep=,
  fi
  if [[ -n $V_RSS ]]; then printf '%s"decryptfs_peak_rss_mib":%s' "$sep" "$RSS_MAX"; fi
  printf '},"checks":['
  sep=''
  for m in "${MEASURED[@]}"; do
    printf '%s%s' "$sep" "$(check "${CHECK_NAME[$m]}_cce_over_gocryptfs" "${RATIO[$m]}" ">=" "${TARGET[$m]}" "${VERDICT[$m]}")"
    sep=,
  done
  if ((ENC_TIMED)); then printf '%s%s' "$sep" "$(check encrypt_mbps "$ENC_MBPS" ">=" "$TARGET_ENCRYPT_MBPS" "$V_ENC")"; sep=,; fi
  if [[ -n $V_RSS ]]; then printf '%s%s' "$sep" "$(check decryptfs_peak_rss_mib "$RSS_MAX" "<=" "$TARGET_RSS_MIB" "$V_RSS")"; fi
  printf '],"samples":{'
  sep=''
  for m in "${MEASURED[@]}"; do printf '%s"%s":%s' "$sep" "${JSON_NAME[$m]}" "$(json_targets samples_json "$m")"; sep=,; done
  printf '},"diagnostics":{'
  sep=''
  for m in "${MEASURED[@]}"; do
    case $m in
      seq) printf '%s"seq":{"disk_bytes_per_plaintext_byte":%s,"daemon_cpu_ms_per_mib":%s}' "$sep" "$(json_targets per_byte_dev "$m")" "$(json_targets cpu_ms_per_mib "$m")" ;;
      rand*) printf '%s"%s":{"disk_kib_per_4k_read":%s,"daemon_cpu_us_per_read":%s}' "$sep" "$m" "$(json_targets per_op_dev_kib "$m")" "$(json_targets cpu_us_per_op "$m")" ;;
      small*) printf '%s"%s":{"disk_bytes_per_plaintext_byte":%s,"daemon_cpu_us_per_file":%s}' "$sep" "$m" "$(json_targets per_byte_dev "$m")" "$(json_targets cpu_us_per_op "$m")" ;;
      walk) printf '%s"walk":{"disk_kib_per_entry":%s,"daemon_cpu_us_per_entry":%s}' "$sep" "$(json_targets per_op_dev_kib "$m")" "$(json_targets cpu_us_per_op "$m")" ;;
    esac
    sep=,
  done
  if ((ENC_TIMED)); then
    printf '%s"encrypt":{"large_file":{"mean_s":%s,"min_s":%s,"max_s":%s,"user_s":%s,"sys_s":%s,"peak_rss_mib":%s},' \
      "$sep" "${ENC[big_mean]}" "${ENC[big_min]}" "${ENC[big_max]}" "${ENC[big_user]}" "${ENC[big_sys]}" "${ENC[big_rss_mib]}"
    printf '"small_tree":{"mean_s":%s,"min_s":%s,"max_s":%s,"user_s":%s,"sys_s":%s,"peak_rss_mib":%s}}' \
      "${ENC[small_mean]}" "${ENC[small_min]}" "${ENC[small_max]}" "${ENC[small_user]}" "${ENC[small_sys]}" "${ENC[small_rss_mib]}"
  fi
  # The profile runs: daemon CPU per operation and its split in percent.
  printf '},"profile":{'
  sep=''
  for key in rand1_cce rand1_floor small1_cce; do
    [[ -n ${PROF[$key]:-} ]] || continue
    read -r cpu kick sched kern crypto fuse libc own <<<"${PROF[$key]}"
    printf '%s"%s":{"daemon_cpu_us_per_op":%s,"pct":{"disk_kick":%s,"wakeups":%s,"kernel_other":%s,"openssl":%s,"libfuse":%s,"libc":%s,"own":%s}}' \
      "$sep" "$key" "$cpu" "$kick" "$sched" "$kern" "$crypto" "$fuse" "$libc" "$own"
    sep=,
  done
  printf '}}'
)
echo "$JSON" >"$LOG_DIR/results.json"
cp "$LOG_DIR/results.json" "$RESULTS_DIR/latest.json"
echo "results: $RESULTS_DIR/latest.json (logs: $LOG_DIR)" >&2
echo "$JSON"
