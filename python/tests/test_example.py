"""examples/explore/analysis.py: the example script the notebook submits.

It must suppress small cells and pass the Output Gate: with the built `cce`
(CCE_BIN_DIR, as for test_plane_integration.py) its output is scanned by
`cce gate scan` against the input and must be released.
"""

import csv
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "explore" / "analysis.py"


def claims_csv(path: Path, rows: int) -> None:
    # scripts/lib/local-plane.sh claims_csv, in Python.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("patient_id,age,zip,diagnosis,cost\n")
        for i in range(1, rows + 1):
            f.write(f"P{100000 + i},{20 + i % 60},{10000 + (i * 37) % 900},ICD-{i % 97},"
                    f"{i * 13 % 5000}.00\n")


class ExampleScriptTest(unittest.TestCase):
    def run_script(self, rows: int):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        data, out = Path(tmp.name) / "data", Path(tmp.name) / "out"
        claims_csv(data / "2026" / "claims.csv", rows)
        r = subprocess.run([sys.executable, str(SCRIPT), str(data), str(out)],
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out / "summary.csv") as f:
            table = list(csv.DictReader(f))
        return data, out, table, r.stdout

    def test_small_cells_are_suppressed_and_nothing_else_shown(self):
        # 950 claims over 97 diagnoses: 9 or 10 each, so some are suppressed.
        data, out, table, stdout = self.run_script(950)
        self.assertTrue(table)
        self.assertLess(len(table), 97)
        self.assertTrue(all(int(row["claims"]) >= 10 for row in table), table)
        self.assertEqual(list(table[0]), ["diagnosis", "claims", "mean_cost"])
        self.assertNotIn("total", " ".join(r["diagnosis"].lower() for r in table))
        self.assertNotIn("P100", stdout)  # no row of the data printed

    def test_output_passes_the_gate(self):
        bin_dir = os.environ.get("CCE_BIN_DIR")
        cce = Path(bin_dir or "/nonexistent") / "cce"
        if not cce.is_file():
            self.fail(f"CCE_BIN_DIR={bin_dir!r} has no cce: build it and set CCE_BIN_DIR")
        for rows in (950, 20000):
            data, out, _, _ = self.run_script(rows)
            r = subprocess.run([str(cce), "gate", "scan", str(out), "--reference", str(data)],
                               capture_output=True, text=True, timeout=120)
            self.assertIn("verdict: release", r.stdout + r.stderr, f"{rows} rows: {r.stdout}")


if __name__ == "__main__":
    unittest.main()
