#!/usr/bin/python3
"""Runs `cce gate scan` on every case of the corpus (generate.py) and checks
each verdict, exit code and JSON shape; prints detection rate, false-hold
rate and per-case results. Exit 1 when any case gets the wrong verdict.

    run_corpus.py --cce build/bin/cce --corpus DIR [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cce", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    cases = json.load(open(os.path.join(a.corpus, "cases.json")))
    refs = []
    for r in sorted(os.listdir(os.path.join(a.corpus, "reference"))):
        refs += ["--reference", os.path.join(a.corpus, "reference", r)]
    wrong, problems = [], []
    held = {"hold": 0, "release": 0}
    total = {"hold": 0, "release": 0}
    started = time.time()
    for c in cases:
        d = os.path.join(a.corpus, "cases", c["name"])
        p = subprocess.run([a.cce, "gate", "scan", d, *refs, "--output", "json"],
                           capture_output=True, text=True, timeout=300)
        try:
            lines = [l for l in p.stdout.splitlines() if l.strip()]
            if len(lines) != 1:
                raise ValueError(f"{len(lines)} lines on stdout")
            report = json.loads(lines[0])
        except ValueError as e:
            problems.append(f"{c['name']}: stdout is not one JSON object ({e}); exit {p.returncode}; "
                            f"stderr: {p.stderr.strip()[:300]}")
            continue
        verdict = report["verdict"]
        want_exit = 0 if verdict == "release" else 1
        if p.returncode != want_exit:
            problems.append(f"{c['name']}: verdict {verdict} but exit code {p.returncode}")
        if verdict == "hold" and not report["findings"]:
            problems.append(f"{c['name']}: held without a finding")
        if not 0 <= report["score"] <= 1:
            problems.append(f"{c['name']}: score {report['score']} outside [0, 1]")
        total[c["expected"]] += 1
        if verdict == "hold":
            held[c["expected"]] += 1
        ok = verdict == c["expected"]
        top = report["findings"][0] if report["findings"] else None
        why = f"{top['detector']} {top['file']} @ {top['location']}: {top['message'][:90]}" if top else ""
        print(f"{'ok  ' if ok else 'FAIL'} {c['expected']:7} -> {verdict:7} {report['score']:.2f} "
              f"{c['name']}  {why}")
        if not ok:
            wrong.append(c["name"])
    seconds = time.time() - started
    detection = held["hold"] / max(1, total["hold"])
    false_hold = held["release"] / max(1, total["release"])
    print(f"\nmalicious held: {held['hold']}/{total['hold']} ({detection:.1%}); "
          f"benign held: {held['release']}/{total['release']} ({false_hold:.1%}); {seconds:.1f} s")
    for pr in problems:
        print("PROBLEM", pr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"malicious": total["hold"], "malicious_held": held["hold"],
                       "benign": total["release"], "benign_held": held["release"],
                       "detection_rate": detection, "false_hold_rate": false_hold,
                       "wrong": wrong}, f, indent=1)
    if wrong or problems:
        print("wrong verdicts: " + ", ".join(wrong))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
