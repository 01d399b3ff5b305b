#!/usr/bin/env python3
"""Claims per diagnosis with their mean cost, from the hospital-claims dataset.

The same script runs in an Explore session (on the desensitized sample, read
at /data/hospital-claims/) and as a Privacy Mode job (on the real data, mounted
at the same path); the job writes /output/summary.csv, which the Output Gate
scores before anything leaves. Groups of fewer than MIN_CELL claims are
suppressed (not shown at all, and no total row that would let them be
recovered by subtraction), the small-cell rule the gate enforces
(docs/gate.md, sdc.small_cell, default 10).

    python3 analysis.py [DATA_DIR] [OUTPUT_DIR]
    (defaults: /data/hospital-claims and $CCE_OUTPUT or /output)
"""

import glob
import os
import sys

import pandas as pd

MIN_CELL = 10


def load(data_dir: str) -> pd.DataFrame:
    """Every CSV under data_dir (the dataset keeps one file per year: 2026/claims.csv)."""
    files = sorted(glob.glob(os.path.join(data_dir, "**", "*.csv"), recursive=True))
    if not files:
        raise SystemExit(f"analysis: no CSV file under {data_dir}")
    return pd.concat((pd.read_csv(f) for f in files), ignore_index=True)


def summarize(claims: pd.DataFrame, min_cell: int = MIN_CELL) -> pd.DataFrame:
    """diagnosis, claims, mean_cost for diagnoses with at least min_cell claims."""
    cost = pd.to_numeric(claims["cost"], errors="coerce")  # a sample may bucket it
    groups = claims.assign(cost=cost).groupby("diagnosis")
    out = pd.DataFrame({"claims": groups.size(), "mean_cost": groups["cost"].mean().round(2)})
    out = out[out["claims"] >= min_cell].reset_index().sort_values("diagnosis")
    return out.reset_index(drop=True)


def main(argv):
    data_dir = argv[1] if len(argv) > 1 else "/data/hospital-claims"
    out_dir = argv[2] if len(argv) > 2 else os.environ.get("CCE_OUTPUT", "/output")
    claims = load(data_dir)
    summary = summarize(claims)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "summary.csv")
    summary.to_csv(path, index=False)
    # Counts only: never a row of the data on stdout (the gate reads it too).
    print(f"analysis: {len(claims)} claims, {len(summary)} diagnoses shown, "
          f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv)
