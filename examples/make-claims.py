#!/usr/bin/python3
"""Writes the tours' sample dataset: synthetic hospital claims, one CSV.

usage: examples/make-claims.py [--rows N] OUT_DIR
    writes OUT_DIR/2026/claims.csv (header patient_id,age,zip,diagnosis,cost)

Deterministic: the same N gives the same bytes, the rows `make demo` uses
(scripts/lib/local-plane.sh claims_csv). Every value is synthetic. With the
default 20000 rows each of the 97 diagnoses has 206 claims, so the example
algorithm's aggregate (examples/algorithm/analyze.sh) has no cell under 10
and the Output Gate releases it.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description="Write the synthetic claims dataset of the tours.")
    ap.add_argument("--rows", type=int, default=20000, help="claim rows (default 20000)")
    ap.add_argument("out", metavar="OUT_DIR", help="directory to create; gets 2026/claims.csv")
    a = ap.parse_args()
    if a.rows < 1:
        sys.exit(f"make-claims: --rows must be at least 1, got {a.rows}")
    os.makedirs(os.path.join(a.out, "2026"), exist_ok=True)
    path = os.path.join(a.out, "2026", "claims.csv")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("patient_id,age,zip,diagnosis,cost\n")
        for i in range(1, a.rows + 1):
            f.write(f"P{100000 + i},{20 + i % 60},{10000 + (i * 37) % 900},"
                    f"ICD-{i % 97},{i * 13 % 5000}.00\n")
    print(f"wrote {path} ({a.rows} rows)")


if __name__ == "__main__":
    main()
