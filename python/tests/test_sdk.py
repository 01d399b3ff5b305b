"""Unit tests of the cce4long SDK against a local fake HTTPS plane.

They check the exact requests the SDK sends (paths, JSON bodies, the bearer
header, the script's base64), how errors map to PlaneError, where the
configuration comes from, that the token never shows, and that a download
lands atomically or not at all.
"""

import base64
import hashlib
import io
import json
import os
import pickle
import sys
import tempfile
import time
import traceback
import unittest
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # python/ : import cce4long from the tree
sys.path.insert(0, str(HERE))

import cce4long  # noqa: E402
from cce4long import _api, _config  # noqa: E402
from fake_plane import FakePlane, truncated_body  # noqa: E402

TOKEN = "cce_tok_SECRET_0123456789abcdef"
JOB_ID = "job-90fbd0285e3cbbb4"


def job_json(state="SUBMITTED", **extra):
    j = {"id": JOB_ID, "name": "analysis", "consumer": "carol", "state": state,
         "reason": f"now {state}", "image": "sha256:" + "ab" * 32, "created_at": 1,
         "updated_at": 2, "deadline": 3, "simulated_tee": True}
    j.update(extra)
    return j


class SdkTestCase(unittest.TestCase):
    """Each test gets a fresh fake plane, an empty environment and no session file."""

    def setUp(self):
        self.plane = FakePlane()
        self.addCleanup(self.plane.close)
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = Path(self.tmp.name)
        env = {"HOME": str(self.dir / "home"), "PATH": os.environ.get("PATH", "")}
        p = mock.patch.dict(os.environ, env, clear=True)
        p.start()
        self.addCleanup(p.stop)
        for target, value in ((_config, ("SESSION_FILE", str(self.dir / "no-session.json"))),
                              (_api, ("DATA_ROOT", str(self.dir / "data")))):
            q = mock.patch.object(target, value[0], value[1])
            q.start()
            self.addCleanup(q.stop)
        _api._reset()
        self.addCleanup(_api._reset)

    def connect(self):
        return cce4long.connect(url=self.plane.url, token=TOKEN, ca=self.plane.ca_pem)

    def write_session(self, **override):
        doc = {"plane_url": self.plane.url, "ca_pem": self.plane.ca_pem, "token": TOKEN,
               "session": "xs-0123456789abcdef"}
        doc.update(override)
        path = self.dir / "session.json"
        path.write_text(json.dumps(doc))
        _config.SESSION_FILE = str(path)  # restored by the patch in setUp
        return path


class RequestsTest(SdkTestCase):
    def test_datasets_sends_bearer_and_merges_own_current_rentals(self):
        now = int(time.time())
        self.plane.routes[("GET", "/api/v1/datasets")] = (200, {"datasets": [
            {"name": "hospital-claims", "owner": "pat", "description": "claims", "price": "2.5",
             "max_days": 14, "dataset_version": 1, "created_at": 5},
            {"name": "other", "owner": "pat", "price": "1"}]})
        self.plane.routes[("GET", "/api/v1/whoami")] = (200, {"name": "carol", "role": "consumer"})
        self.plane.routes[("GET", "/api/v1/rentals")] = (200, {"rentals": [
            {"dataset": "hospital-claims", "consumer": "carol", "start": now - 10,
             "end": now + 3600},
            {"dataset": "other", "consumer": "dave", "start": now - 10, "end": now + 3600},
            {"dataset": "other", "consumer": "carol", "start": now - 100, "end": now - 50}]})
        self.connect()
        ds = {d.name: d for d in cce4long.datasets()}
        self.assertEqual(ds["hospital-claims"].rented_until, now + 3600)
        self.assertTrue(ds["hospital-claims"].rented)
        self.assertEqual(ds["hospital-claims"].price, "2.5")
        self.assertEqual(ds["hospital-claims"].max_days, 14)
        self.assertIsNone(ds["other"].rented_until)  # dave's rental, and carol's expired one
        self.assertFalse(ds["other"].rented)
        for r in self.plane.requests:
            self.assertEqual(r.headers["authorization"], "Bearer " + TOKEN)
            self.assertEqual(r.method, "GET")
            self.assertEqual(r.body, b"")

    def test_datasets_without_rental_access_says_unknown(self):
        # A session-scoped token may list datasets but not rentals (x8).
        self.plane.routes[("GET", "/api/v1/datasets")] = (
            200, {"datasets": [{"name": "a"}, {"name": "b"}]})
        forbidden = (403, {"error": {"code": "permission_denied", "message": "session token"}})
        self.plane.routes[("GET", "/api/v1/whoami")] = forbidden
        self.plane.routes[("GET", "/api/v1/rentals")] = forbidden
        self.write_session()
        (self.dir / "data" / "a").mkdir(parents=True)
        a, b = cce4long.datasets()
        self.assertFalse(a.rentals_known)
        self.assertIsNone(a.rented_until)
        self.assertEqual((a.sample_mounted, b.sample_mounted), (True, False))

    def test_submit_posts_the_script_as_base64_with_mounts_at_data(self):
        script = b"import pandas as pd\nprint('\xc3\xa9')\n\x00binary-ok\n"
        (self.dir / "analysis.py").write_bytes(script)
        self.plane.routes[("POST", "/api/v1/jobs/script")] = (201, job_json())
        self.connect()
        cwd = os.getcwd()
        os.chdir(self.dir)
        try:
            job = cce4long.submit(script="analysis.py", datasets=["hospital-claims"],
                                  args=["--min", 10], resources={"cpus": 1, "memoryMiB": 512},
                                  name="claims-by-dx")
        finally:
            os.chdir(cwd)
        self.assertEqual(job.id, JOB_ID)
        self.assertEqual(job.state, "SUBMITTED")
        r = self.plane.only("POST", "/api/v1/jobs/script")
        self.assertEqual(r.headers["authorization"], "Bearer " + TOKEN)
        self.assertEqual(r.headers["content-type"], "application/json")
        body = r.json()
        self.assertEqual(base64.b64decode(body["script"]["content_base64"], validate=True), script)
        body["script"].pop("content_base64")
        self.assertEqual(body, {
            "name": "claims-by-dx", "base": "python-data", "script": {"name": "analysis.py"},
            "datasets": [{"name": "hospital-claims", "mountPath": "/data/hospital-claims"}],
            "args": ["--min", "10"], "resources": {"cpus": 1, "memoryMiB": 512}})

    def test_submit_leaves_out_what_was_not_given(self):
        path = self.dir / "s.py"
        path.write_text("print(1)\n")
        self.plane.routes[("POST", "/api/v1/jobs/script")] = (201, job_json())
        self.connect()
        cce4long.submit(script=path, datasets="a", base="r-base")
        body = self.plane.only("POST", "/api/v1/jobs/script").json()
        self.assertEqual(set(body), {"base", "script", "datasets"})
        self.assertEqual(body["base"], "r-base")
        self.assertEqual(body["datasets"], [{"name": "a", "mountPath": "/data/a"}])

    def test_submit_refuses_bad_dataset_names_before_sending(self):
        (self.dir / "s.py").write_text("x")
        self.connect()
        for bad in (["../etc"], ["A"], [], [{"mountPath": "/x"}]):
            with self.assertRaises(ValueError):
                cce4long.submit(script=self.dir / "s.py", datasets=bad)
        self.assertEqual(self.plane.requests, [])

    def test_jobs_follows_pages_and_job_validates_the_id(self):
        first = [job_json() | {"id": f"job-{i:016x}"} for i in range(2)]
        self.plane.routes[("GET", "/api/v1/jobs?offset=0&state=HELD")] = (
            200, {"jobs": first, "next_offset": 2})
        self.plane.routes[("GET", "/api/v1/jobs?offset=2&state=HELD")] = (
            200, {"jobs": [job_json() | {"id": "job-00000000000000ff"}]})
        self.connect()
        self.assertEqual([j.id for j in cce4long.jobs(state="HELD")],
                         ["job-0000000000000000", "job-0000000000000001", "job-00000000000000ff"])
        with self.assertRaises(ValueError):
            cce4long.job("../users")
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}")] = (200, job_json("RUNNING"))
        self.assertEqual(cce4long.job(JOB_ID).state, "RUNNING")

    def test_bases(self):
        self.plane.routes[("GET", "/api/v1/explore/bases")] = (200, {"bases": [
            {"name": "python-data", "image": "library/python-data:1",
             "command": ["python3", "/job/script.py"]}]})
        self.connect()
        [b] = cce4long.bases()
        self.assertEqual((b.name, b.image, b.command),
                         ("python-data", "library/python-data:1", ("python3", "/job/script.py")))

    def test_wait_stops_at_held_and_times_out(self):
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}")] = [
            (200, job_json("PROVISIONING")), (200, job_json("RUNNING")), (200, job_json("HELD"))]
        self.connect()
        job = cce4long.Job(cce4long.client(), job_json())
        st = job.wait(poll=0.01, progress=False)
        self.assertEqual(st.state, "HELD")
        self.assertEqual(st["reason"], "now HELD")
        self.assertEqual(len(self.plane.requests), 3)
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}")] = (200, job_json("RUNNING"))
        with self.assertRaisesRegex(TimeoutError, "still RUNNING"):
            job.wait(timeout=0.2, poll=0.05, progress=False)

    def test_wait_progress_outside_a_notebook_is_one_line_per_state(self):
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}")] = [
            (200, job_json("RUNNING")), (200, job_json("RUNNING")), (200, job_json("RELEASED"))]
        self.connect()
        err = io.StringIO()
        with mock.patch.object(sys, "stderr", err):
            cce4long.Job(cce4long.client(), job_json()).wait(poll=0.01)
        lines = err.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(lines[0].startswith(f"{JOB_ID}: RUNNING after"), lines)
        self.assertIn("RELEASED", lines[1])

    def test_cancel(self):
        self.plane.routes[("POST", f"/api/v1/jobs/{JOB_ID}/cancel")] = (200, job_json("CANCELLED"))
        self.connect()
        self.assertEqual(cce4long.Job(cce4long.client(), job_json()).cancel().state, "CANCELLED")


class ErrorsTest(SdkTestCase):
    def test_plane_json_error_becomes_plane_error(self):
        self.plane.routes[("POST", "/api/v1/jobs/script")] = (403, {"error": {
            "code": "permission_denied",
            "message": "datasets[0].name: your rental of 'claims' does not cover the timeout"}})
        (self.dir / "s.py").write_text("x")
        self.connect()
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.submit(script=self.dir / "s.py", datasets=["claims"])
        e = cm.exception
        self.assertEqual(e.status, 403)
        self.assertEqual(e.code, "permission_denied")
        self.assertIn("POST /api/v1/jobs/script", e.message)
        self.assertIn("your rental of 'claims' does not cover", e.message)

    def test_non_json_error_is_http_status(self):
        self.plane.routes[("GET", "/api/v1/datasets")] = (502, b"<html>bad gateway</html>")
        self.connect()
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.datasets()
        self.assertEqual((cm.exception.status, cm.exception.code), (502, "http_502"))

    def test_unreachable_plane_is_a_transport_error(self):
        port = self.plane.server.server_address[1]
        self.plane.close()
        self.plane.close = lambda: None
        cce4long.connect(url=f"https://127.0.0.1:{port}", token=TOKEN, ca=self.plane.ca_pem)
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.datasets()
        self.assertEqual((cm.exception.status, cm.exception.code), (0, "transport"))

    def test_tls_is_verified_against_the_given_ca_only(self):
        other = FakePlane()  # a different CA
        self.addCleanup(other.close)
        cce4long.connect(url=self.plane.url, token=TOKEN, ca=other.ca_pem)
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.datasets()
        self.assertEqual(cm.exception.code, "transport")
        self.assertIn("TLS", cm.exception.message)
        self.assertEqual(self.plane.requests, [])  # the token never left

    def test_http_url_is_refused(self):
        with self.assertRaisesRegex(cce4long.PlaneError, "https://"):
            cce4long.connect(url="http://127.0.0.1:1", token=TOKEN, ca=self.plane.ca_pem)

    def test_redirect_is_not_followed_so_the_token_stays(self):
        other = FakePlane()
        self.addCleanup(other.close)
        self.plane.routes[("GET", "/api/v1/datasets")] = (
            302, b"", {"Location": other.url + "/api/v1/datasets"})
        cce4long.connect(url=self.plane.url, token=TOKEN, ca=self.plane.ca_pem)
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.datasets()
        self.assertEqual(cm.exception.status, 302)
        self.assertEqual(other.requests, [])


class ConfigTest(SdkTestCase):
    def test_session_file_wins_over_the_environment(self):
        self.write_session()
        os.environ.update({"CCE_PLANE_URL": "https://203.0.113.1:1", "CCE_TOKEN": "env-token",
                           "CCE_CA": self.plane.ca_file})
        self.plane.routes[("GET", "/api/v1/datasets")] = (200, {"datasets": []})
        self.plane.routes[("GET", "/api/v1/whoami")] = (200, {"name": "carol"})
        self.plane.routes[("GET", "/api/v1/rentals")] = (200, {"rentals": []})
        self.assertEqual(cce4long.datasets(), [])
        c = cce4long.client()
        self.assertEqual(c.session, "xs-0123456789abcdef")
        self.assertEqual(c.url, self.plane.url)
        self.assertEqual(self.plane.requests[0].headers["authorization"], "Bearer " + TOKEN)

    def test_session_file_errors_name_file_and_field(self):
        path = self.write_session(token=7)
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.client()
        self.assertEqual(cm.exception.code, "not_configured")
        self.assertIn(str(path), cm.exception.message)
        self.assertIn("token", cm.exception.message)
        path.write_text("{not json")
        with self.assertRaisesRegex(cce4long.PlaneError, "not JSON"):
            cce4long.client()

    def test_environment_with_ca_file_or_pem(self):
        os.environ.update({"CCE_PLANE_URL": self.plane.url, "CCE_TOKEN": TOKEN,
                           "CCE_CA": self.plane.ca_file})
        self.assertEqual(cce4long.client().url, self.plane.url)
        _api._reset()
        os.environ["CCE_CA"] = self.plane.ca_pem
        self.assertEqual(cce4long.client().url, self.plane.url)
        _api._reset()
        del os.environ["CCE_CA"]
        os.environ["CCE_CA_FILE"] = self.plane.ca_file  # the name `cce` uses
        self.assertIn("environment", cce4long.client().source)

    def test_cli_config_file_with_env_overrides(self):
        cfg = self.dir / "xdg" / "cce" / "config.yaml"
        cfg.parent.mkdir(parents=True)
        cfg.write_text(
            "# cce client configuration (written by `cce login`)\n"
            f"plane_url: {self.plane.url}\n"
            "token: \"" + TOKEN + "\"\n"
            f"ca_file: '{self.plane.ca_file}'\n"
            "planes:\n"
            f"  {self.plane.url}:\n"
            "    public_key: abcd\n    audit_seq: 3\n")
        os.environ["XDG_CONFIG_HOME"] = str(self.dir / "xdg")
        self.plane.routes[("GET", "/api/v1/explore/bases")] = (200, {"bases": []})
        self.assertEqual(cce4long.bases(), [])
        self.assertEqual(cce4long.client().source, str(cfg))
        self.assertEqual(self.plane.requests[0].headers["authorization"], "Bearer " + TOKEN)
        _api._reset()
        os.environ["CCE_TOKEN"] = "override-token"
        cce4long.bases()
        self.assertEqual(self.plane.requests[1].headers["authorization"],
                         "Bearer override-token")

    def test_nothing_configured_says_where_it_looked(self):
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.datasets()
        self.assertEqual(cm.exception.code, "not_configured")
        for where in ("session.json", "CCE_PLANE_URL", "config.yaml", "cce login"):
            self.assertIn(where, cm.exception.message)

    def test_connect_fills_missing_arguments_from_discovery(self):
        self.write_session()
        c = cce4long.connect(url=self.plane.url)
        self.assertEqual(c.session, "xs-0123456789abcdef")


class SecretTest(SdkTestCase):
    def test_token_never_in_repr_str_or_errors(self):
        self.write_session()
        c = cce4long.client()
        shown = [repr(c), str(c), repr(vars(c)), f"{c._token}", str(c._token),
                 repr(_config.discover())]
        self.plane.routes[("GET", "/api/v1/datasets")] = (401, {"error": {
            "code": "unauthenticated", "message": "unknown token"}})
        try:
            cce4long.datasets()
            self.fail("no error")
        except cce4long.PlaneError as e:
            shown += [str(e), repr(e), "".join(traceback.format_exception(e))]
        job = cce4long.Job(c, job_json())
        shown.append(repr(job))
        for text in shown:
            self.assertNotIn(TOKEN, text)
            self.assertNotIn(TOKEN[8:20], text)
        with self.assertRaises(TypeError):
            pickle.dumps(c)
        with self.assertRaises(TypeError):
            pickle.dumps(c._token)

    def test_bad_token_error_does_not_echo_it(self):
        bad = TOKEN + "\nX"
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.connect(url=self.plane.url, token=bad, ca=self.plane.ca_pem)
        self.assertNotIn(TOKEN, str(cm.exception) + repr(cm.exception))


class SampleTest(SdkTestCase):
    CSV_A = b"patient_id,age,zip,diagnosis,cost\nh1,30-39,100**,ICD-1,120.00\n"
    CSV_B = b"patient_id,age,zip,diagnosis,cost\nh2,40-49,101**,ICD-2,80.50\n"
    JSONL = b'{"patient_id":"h3","age":"50-59","zip":"102**","diagnosis":"ICD-3","cost":5.0}\n'

    def test_inside_a_session_reads_the_mounted_sample_and_asks_nothing(self):
        self.write_session()
        root = self.dir / "data" / "hospital-claims"
        (root / "2026").mkdir(parents=True)
        (root / "2026" / "a.csv").write_bytes(self.CSV_A)
        (root / "b.csv").write_bytes(self.CSV_B)
        (root / "c.jsonl").write_bytes(self.JSONL)
        (root / "README.txt").write_text("not a table")
        df = cce4long.sample("hospital-claims")
        self.assertEqual(list(df.columns), ["patient_id", "age", "zip", "diagnosis", "cost"])
        self.assertEqual(list(df["patient_id"]), ["h1", "h2", "h3"])  # path order
        one = cce4long.sample("hospital-claims", file="c.jsonl")
        self.assertEqual(list(one["patient_id"]), ["h3"])
        files = cce4long.sample_files("hospital-claims")
        self.assertEqual([f.path for f in files], ["2026/a.csv", "README.txt", "b.csv", "c.jsonl"])
        self.assertEqual(files[0].sha256, hashlib.sha256(self.CSV_A).hexdigest())
        with self.assertRaises(ValueError):
            cce4long.sample("hospital-claims", file="../other/x.csv")
        self.assertEqual(self.plane.requests, [])

    def listing(self, files):
        return (200, {"dataset": "hospital-claims", "version": 1, "published_at": 1,
                      "files": [{"path": p, "size": len(b),
                                 "sha256": hashlib.sha256(b).hexdigest()} for p, b in files]})

    def test_outside_a_session_downloads_and_checks_each_file(self):
        self.plane.routes[("GET", "/api/v1/datasets/hospital-claims/sample")] = self.listing(
            [("2026/a b.csv", self.CSV_A), ("c.jsonl", self.JSONL), ("report.json", b"{}")])
        base = "/api/v1/datasets/hospital-claims/sample/files/"
        self.plane.routes[("GET", base + "2026/a%20b.csv")] = (200, self.CSV_A)
        self.plane.routes[("GET", base + "c.jsonl")] = (200, self.JSONL)
        self.connect()
        df = cce4long.sample("hospital-claims")
        self.assertEqual(list(df["patient_id"]), ["h1", "h3"])
        self.assertNotIn(("GET", base + "report.json"),
                         [(r.method, r.path) for r in self.plane.requests])
        self.assertEqual([f.path for f in cce4long.sample_files("hospital-claims")],
                         ["2026/a b.csv", "c.jsonl", "report.json"])

    def test_a_file_that_does_not_match_the_listing_is_refused(self):
        self.plane.routes[("GET", "/api/v1/datasets/hospital-claims/sample")] = self.listing(
            [("a.csv", self.CSV_A)])
        tampered = self.CSV_A.replace(b"120.00", b"999.00")
        self.plane.routes[("GET", "/api/v1/datasets/hospital-claims/sample/files/a.csv")] = (
            200, tampered)
        self.connect()
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.sample("hospital-claims")
        self.assertEqual(cm.exception.code, "data_loss")
        self.assertIn("a.csv", cm.exception.message)

    def test_no_rental_is_the_planes_refusal(self):
        self.plane.routes[("GET", "/api/v1/datasets/hospital-claims/sample")] = (403, {"error": {
            "code": "permission_denied", "message": "no active rental of 'hospital-claims'"}})
        self.connect()
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.sample("hospital-claims")
        self.assertEqual(cm.exception.status, 403)
        self.assertIn("no active rental", cm.exception.message)


class DownloadTest(SdkTestCase):
    BUNDLE = b"pretend tar bundle\n" * 5000

    def arrange(self, body=None, digest=None, size=None, header_digest=None):
        body = self.BUNDLE if body is None else body
        digest = digest or "sha256:" + hashlib.sha256(self.BUNDLE).hexdigest()
        size = len(self.BUNDLE) if size is None else size
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}")] = (200, job_json(
            "RELEASED", output={"size": size, "digest": digest, "verdict": "release",
                                "downloadable": True}))
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}/output")] = body if callable(body) \
            else (200, body, {"X-Output-Digest": header_digest or digest})
        self.connect()
        return cce4long.Job(cce4long.client(), job_json("RELEASED"))

    def leftovers(self):
        return sorted(p.name for p in self.dir.iterdir() if p.name.startswith("."))

    def test_good_download_lands_whole(self):
        job = self.arrange()
        dest = job.download(self.dir / "result.bundle")
        self.assertEqual(dest.read_bytes(), self.BUNDLE)
        self.assertEqual(self.leftovers(), [])
        (self.dir / "out").mkdir()
        self.assertEqual(job.download(self.dir / "out"), self.dir / "out" / "output.bundle")

    def test_digest_mismatch_leaves_nothing(self):
        tampered = self.BUNDLE[:-1] + b"X"
        # The header agrees with the tampered bytes: the digest recorded at
        # submission (GET /jobs/{id}) is what must catch it.
        job = self.arrange(body=tampered,
                           header_digest="sha256:" + hashlib.sha256(tampered).hexdigest())
        with self.assertRaises(cce4long.PlaneError) as cm:
            job.download(self.dir / "result.bundle")
        self.assertEqual(cm.exception.code, "data_loss")
        self.assertIn("hash to", cm.exception.message)
        self.assertFalse((self.dir / "result.bundle").exists())
        self.assertEqual(self.leftovers(), [])

    def test_header_digest_disagreeing_is_refused(self):
        job = self.arrange(header_digest="sha256:" + "00" * 32)
        with self.assertRaisesRegex(cce4long.PlaneError, "X-Output-Digest"):
            job.download(self.dir / "result.bundle")
        self.assertFalse((self.dir / "result.bundle").exists())

    def test_stream_cut_short_leaves_nothing(self):
        job = self.arrange(body=truncated_body(len(self.BUNDLE), self.BUNDLE[:1000]))
        with self.assertRaises(cce4long.PlaneError) as cm:
            job.download(self.dir / "result.bundle")
        self.assertIn(cm.exception.code, ("data_loss", "transport"))
        self.assertFalse((self.dir / "result.bundle").exists())
        self.assertEqual(self.leftovers(), [])

    def test_existing_file_is_kept_unless_overwrite(self):
        job = self.arrange()
        dest = self.dir / "result.bundle"
        dest.write_bytes(b"precious")
        with self.assertRaises(FileExistsError):
            job.download(dest)
        self.assertEqual(dest.read_bytes(), b"precious")
        self.assertEqual([r.path for r in self.plane.requests], [])  # refused before asking
        job.download(dest, overwrite=True)
        self.assertEqual(dest.read_bytes(), self.BUNDLE)
        self.assertEqual(self.leftovers(), [])

    def test_a_file_appearing_during_the_download_is_not_replaced(self):
        dest = self.dir / "result.bundle"
        digest = "sha256:" + hashlib.sha256(self.BUNDLE).hexdigest()

        def reply(h):
            dest.write_bytes(b"written meanwhile")  # after the SDK's first check
            h.send_response(200)
            h.send_header("Content-Length", str(len(self.BUNDLE)))
            h.send_header("X-Output-Digest", digest)
            h.end_headers()
            h.wfile.write(self.BUNDLE)

        job = self.arrange(body=reply)
        with self.assertRaises(FileExistsError):
            job.download(dest)
        self.assertEqual(dest.read_bytes(), b"written meanwhile")
        self.assertEqual(self.leftovers(), [])

    def test_not_released_is_the_planes_409(self):
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}")] = (200, job_json("HELD"))
        self.plane.routes[("GET", f"/api/v1/jobs/{JOB_ID}/output")] = (409, {"error": {
            "code": "failed_precondition",
            "message": f"job {JOB_ID} is HELD: its output can be downloaded only once RELEASED"}})
        self.connect()
        job = cce4long.Job(cce4long.client(), job_json("HELD"))
        with self.assertRaises(cce4long.PlaneError) as cm:
            job.download(self.dir / "r.bundle")
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "failed_precondition"))
        self.assertFalse((self.dir / "r.bundle").exists())
        self.assertEqual(self.leftovers(), [])


if __name__ == "__main__":
    unittest.main()
