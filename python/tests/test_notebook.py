"""examples/explore/analysis.ipynb executed cell by cell in a real IPython
kernel (nbclient, Debian's python3-nbclient) against the fake HTTPS plane.

The test only prepends a cell that connects to the fake plane and puts the
tree's cce4long on sys.path, and points the notebook's /data/hospital-claims
at a temporary copy of the sample; every other cell runs as written: sample,
the script on the sample, bases, submit, wait (its progress display), download
and reading files/summary.csv out of the bundle.
"""

import base64
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fake_plane import FakePlane  # noqa: E402

ROOT = HERE.parents[1]
NOTEBOOK = ROOT / "examples" / "explore" / "analysis.ipynb"
JOB_ID = "job-00000000000000aa"
TOKEN = "cce_notebook_test_token"


def claims(rows: int) -> bytes:
    lines = ["patient_id,age,zip,diagnosis,cost"]
    for i in range(1, rows + 1):
        lines.append(f"h{i},{20 + i % 60},{10000 + i % 90},ICD-{i % 7},{i * 13 % 5000}.00")
    return ("\n".join(lines) + "\n").encode()


def bundle(summary: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in (("result.json", b'{"exit_code": 0}'), ("files/summary.csv", summary)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class NotebookTest(unittest.TestCase):
    def test_example_notebook_runs_against_a_plane(self):
        try:
            import nbclient
            import nbformat
        except ImportError as e:
            self.fail(f"{e}: install Debian's python3-nbclient and python3-nbformat "
                      "(python3-notebook brings them)")
        plane = FakePlane()
        self.addCleanup(plane.close)
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        work = Path(tmp.name)
        sample = claims(140)
        (work / "data" / "hospital-claims").mkdir(parents=True)
        (work / "data" / "hospital-claims" / "claims.csv").write_bytes(sample)
        shutil.copy(ROOT / "examples" / "explore" / "analysis.py", work / "analysis.py")

        summary = b"diagnosis,claims,mean_cost\nICD-1,20,2500.00\n"
        out = bundle(summary)
        digest = "sha256:" + hashlib.sha256(out).hexdigest()
        job = {"id": JOB_ID, "name": "analysis", "consumer": "carol", "reason": "r"}
        plane.routes.update({
            ("GET", "/api/v1/datasets"): (200, {"datasets": [{"name": "hospital-claims"}]}),
            ("GET", "/api/v1/whoami"): (200, {"name": "carol"}),
            ("GET", "/api/v1/rentals"): (200, {"rentals": []}),
            ("GET", "/api/v1/datasets/hospital-claims/sample"): (200, {"files": [
                {"path": "claims.csv", "size": len(sample),
                 "sha256": hashlib.sha256(sample).hexdigest()}]}),
            ("GET", "/api/v1/datasets/hospital-claims/sample/files/claims.csv"): (200, sample),
            ("GET", "/api/v1/explore/bases"): (200, {"bases": [
                {"name": "python-data", "image": "library/python-data:1",
                 "command": ["python3"]}]}),
            ("POST", "/api/v1/jobs/script"): (201, dict(job, state="SUBMITTED")),
            ("GET", f"/api/v1/jobs/{JOB_ID}"): [
                (200, dict(job, state="RUNNING")),
                (200, dict(job, state="RELEASED",
                           output={"size": len(out), "digest": digest}))],
            ("GET", f"/api/v1/jobs/{JOB_ID}/output"): (200, out, {"X-Output-Digest": digest}),
        })

        nb = nbformat.read(str(NOTEBOOK), as_version=4)
        for cell in nb.cells:
            cell.source = cell.source.replace("/data/hospital-claims",
                                              str(work / "data" / "hospital-claims"))
        setup = (f"import sys; sys.path.insert(0, {str(ROOT / 'python')!r})\n"
                 "import cce4long\n"
                 f"cce4long.connect(url={plane.url!r}, token={TOKEN!r}, "
                 f"ca={plane.ca_pem!r})")
        nb.cells.insert(0, nbformat.v4.new_code_cell(setup))
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the kernel's debugger
        client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                         resources={"metadata": {"path": str(work)}})
        client.execute()

        def text(cell):
            parts = []
            for o in cell.get("outputs", []):
                parts.append(o.get("text", ""))
                parts.extend(str(v) for v in o.get("data", {}).values())
            return "\n".join(parts)

        cells = nb.cells
        by_source = {c.source.strip().splitlines()[-1] if c.source.strip() else "": c
                     for c in cells if c.cell_type == "code"}
        # The sample's head and the script's result on it were shown.
        self.assertIn("patient_id", text(by_source["df.head()"]))
        self.assertIn("ICD-", text(by_source['pd.read_csv("preview/summary.csv").head()']))
        self.assertTrue((work / "preview" / "summary.csv").is_file())
        # The job was submitted with the notebook's script, waited on, downloaded.
        body = json.loads(plane.only("POST", "/api/v1/jobs/script").body)
        self.assertEqual(base64.b64decode(body["script"]["content_base64"]),
                         (work / "analysis.py").read_bytes())
        self.assertEqual(body["datasets"],
                         [{"name": "hospital-claims", "mountPath": "/data/hospital-claims"}])
        self.assertIn("RELEASED", text(by_source["status.state, status.reason"]))
        self.assertIn(JOB_ID, json.dumps(by_source["status.state, status.reason"]["outputs"]))
        self.assertIn("2500.0", text(by_source["summary.head()"]))
        self.assertEqual((work / "claims-summary.bundle").read_bytes(), out)
        for c in cells:
            for o in c.get("outputs", []):
                self.assertNotEqual(o.get("output_type"), "error", o)
                self.assertNotIn(TOKEN, json.dumps(o))


if __name__ == "__main__":
    unittest.main()
