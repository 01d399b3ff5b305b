#!/usr/bin/python3
"""The tour test: runs the ```sh blocks of README.md and docs/**/*.md as written.

usage: run_tours.py --source-dir REPO --bin-dir BUILD/bin [--timeout SECONDS]
                    [--keep] [--list] [DOC.md ...]

Rules (tests/tours/README.md): each document's ```sh blocks run in file
order in ONE `bash` with `set -euo pipefail`, in a fresh temporary working
directory that holds a copy of the repo's examples/ and build/bin (a link
to --bin-dir, also first on PATH), with HOME a fresh directory there and no
CCE_* variables. A document fails when a command fails (the report names the
document, the line of the block and of the command, the command and its
stderr), when it runs longer than --timeout, or when it has a fence with no
language. Every process the document started (`cce-plane serve &`) is
killed when it ends, also on failure. Exit 0 when every document passed.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CURRENT_GROUP = [0]  # the running document's process group, killed if we are
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")


def blocks(path):
    """[(line of the opening fence (1-based), language, text)] of every fenced block."""
    out = []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3)
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        out.append((start, lang, "\n".join(body) + "\n"))
        i += 1
    return out


def script_for(doc, sh_blocks, tour_dir, status):
    """Writes one file per block and the driver that sources them in order."""
    os.makedirs(tour_dir, exist_ok=True)
    st = sh_quote(status)
    parts = [
        "set -Eeuo pipefail",
        # On the first failing command: where (document line) and what.
        "__tour_line=0",
        "trap '__rc=$?; printf \"%s\\t%s\\t%s\\n\" \"$__rc\" \"$((__tour_line + LINENO))\" "
        "\"$BASH_COMMAND\" >> " + st.replace("'", "'\\''") + "; exit $__rc' ERR",
    ]
    for n, (line, _lang, text) in enumerate(sh_blocks):
        f = os.path.join(tour_dir, f"block-{n}.sh")
        with open(f, "w", encoding="utf-8") as fh:
            fh.write(text)
        parts.append(f"printf '\\n[tour] %s:%d\\n' {sh_quote(doc)} {line} >&2")
        parts.append(f"printf '\\n[tour] %s:%d\\n' {sh_quote(doc)} {line}")
        # LINENO in a sourced file counts from its first line: the block's
        # first line is the document's line `line` + 1.
        parts.append(f"__tour_line={line}")
        parts.append(f". {sh_quote(f)}")
    parts.append(f"printf '%s\\t%s\\t%s\\n' 0 0 done >> {st}")
    driver = os.path.join(tour_dir, "driver.sh")
    with open(driver, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts) + "\n")
    return driver


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def kill_group(pgid, leader=None):
    """SIGTERM to the document's process group, then SIGKILL after 10 s.

    True once no process of the group is left (the leader, a Popen, is reaped
    here: a zombie still counts as a member)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if leader is not None:
                leader.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
    return False


def tail(path, n):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().rstrip("\n").split("\n")
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def last_block(text):
    """The part of a log after the last `[tour] DOC:LINE` marker."""
    i = text.rfind("\n[tour] ")
    return text[i + 1:] if i >= 0 else text


def run_doc(doc_rel, src, bin_dir, timeout, keep):
    doc = os.path.join(src, doc_rel)
    all_blocks = blocks(doc)
    bad = [(line, "a fence with no language: use ```sh (runs in the tour) or ```text "
            "(output, syntax; also ```yaml, ```json, ...)") for line, lang, _ in all_blocks
           if not lang]
    if bad:
        for line, msg in bad:
            print(f"FAIL {doc_rel}:{line}: {msg}")
        return False
    sh = [b for b in all_blocks if b[1] == "sh"]
    if not sh and doc_rel == "README.md":
        print("FAIL README.md: no ```sh block: its quick tour must be runnable blocks")
        return False
    if not sh:
        return True
    work = tempfile.mkdtemp(prefix="cce-tour-")
    ok = False
    try:
        shutil.copytree(os.path.join(src, "examples"), os.path.join(work, "examples"),
                        symlinks=True)
        os.makedirs(os.path.join(work, "build"))
        os.symlink(os.path.abspath(bin_dir), os.path.join(work, "build", "bin"))
        os.makedirs(os.path.join(work, "home"), mode=0o700)
        status_path = os.path.join(work, ".tour", "status")
        driver = script_for(doc_rel, sh, os.path.join(work, ".tour"), status_path)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CCE_") and k not in ("XDG_CONFIG_HOME", "OLDPWD")}
        env.update(HOME=os.path.join(work, "home"), LANG="C.UTF-8", LC_ALL="C.UTF-8",
                   TERM="dumb", PWD=work,
                   PATH=os.path.join(work, "build", "bin") + ":" +
                   env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
        out_path = os.path.join(work, ".tour", "stdout.log")
        err_path = os.path.join(work, ".tour", "stderr.log")
        started = time.monotonic()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen(["/bin/bash", "--noprofile", "--norc", driver], cwd=work,
                                 env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 start_new_session=True)
        CURRENT_GROUP[0] = p.pid
        timed_out = False
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        elapsed = time.monotonic() - started
        gone = kill_group(p.pid, p)
        p.wait()
        CURRENT_GROUP[0] = 0
        status = tail(status_path, 1).split("\t", 2)
        if timed_out:
            print(f"FAIL {doc_rel}: still running after {timeout} s (--timeout)")
        elif len(status) == 3 and status[0] == "0" and status[2] == "done" and p.returncode == 0:
            ok = True
            print(f"ok   {doc_rel}: {len(sh)} block(s) in {elapsed:.1f} s")
        elif len(status) == 3 and status[2] != "done":
            print(f"FAIL {doc_rel}:{status[1]}: exit {status[0]}: {status[2]}")
        else:
            print(f"FAIL {doc_rel}: the shell exited {p.returncode} (an `exit` in a block?)")
        if not ok:
            print(f"--- stderr of that block:\n{last_block(tail(err_path, 40))}")
            print(f"--- stdout of that block:\n{last_block(tail(out_path, 15))}")
            for name in sorted(os.listdir(work)):
                if name.endswith(".log") and os.path.isfile(os.path.join(work, name)):
                    print(f"--- {name} (last lines):\n{tail(os.path.join(work, name), 10)}")
        if not gone:
            print(f"FAIL {doc_rel}: processes it started survived SIGKILL")
            ok = False
        return ok
    finally:
        if keep:
            print(f"     (kept {work})")
        else:
            subprocess.run(["umount", "-R", "-l", work], stderr=subprocess.DEVNULL, check=False)
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source-dir", required=True, help="the repo (README.md, docs/, examples/)")
    ap.add_argument("--bin-dir", required=True, help="the build's bin directory (cce, cce-plane, ...)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per document (default 120)")
    ap.add_argument("--keep", action="store_true", help="keep each document's working directory")
    ap.add_argument("--list", action="store_true", help="print the sh blocks, run nothing")
    ap.add_argument("docs", nargs="*", help="documents relative to --source-dir "
                    "(default: README.md and docs/**/*.md)")
    a = ap.parse_args()
    src = os.path.abspath(a.source_dir)
    for need in ("cce", "cce-plane", "cce-agent", "cce-decryptfs"):
        if not os.access(os.path.join(a.bin_dir, need), os.X_OK):
            sys.exit(f"run_tours: {a.bin_dir}/{need}: missing; build it first (--bin-dir)")
    docs = a.docs
    if not docs:
        docs = ["README.md"]
        for d, _, files in sorted(os.walk(os.path.join(src, "docs"))):
            docs += sorted(os.path.relpath(os.path.join(d, f), src) for f in files
                           if f.endswith(".md"))
    if a.list:
        for doc in docs:
            for line, lang, text in blocks(os.path.join(src, doc)):
                if lang == "sh":
                    print(f"== {doc}:{line}\n{text}", end="")
        return 0
    if os.geteuid() != 0:
        sys.exit("run_tours: needs root: README.md's quick tour runs jobs with the local "
                 "provisioner (runc, namespaces, FUSE); run as root (CTest label root)")
    if not shutil.which("runc"):
        sys.exit("run_tours: runc not found on PATH: apt-get install runc (make deps)")

    def on_signal(signum, _frame):
        if CURRENT_GROUP[0]:
            kill_group(CURRENT_GROUP[0])  # the leader is reaped by the exit
        sys.exit(f"run_tours: stopped by signal {signum}; the running document was killed")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    failed = [doc for doc in docs if not run_doc(doc, src, a.bin_dir, a.timeout, a.keep)]
    if failed:
        print(f"tours: {len(failed)} of {len(docs)} document(s) failed: {', '.join(failed)}")
        return 1
    print(f"tours: all {len(docs)} document(s) passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
