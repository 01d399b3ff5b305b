"""The SDK against a REAL running plane (cce-plane serve, provisioner `fake`).

Needs the built binaries: CCE_BIN_DIR=<build>/bin (ctest sets it; the test
fails, never skips, without them). Covers the catalog and rentals, a job
through the API, samples (published by the provider, read by the renter) and
a script job on a curated base.
"""

import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import cce4long  # noqa: E402
from cce4long import _api, _config  # noqa: E402

DATASET = "hospital-claims"
CLAIMS = "patient_id,age,zip,diagnosis,cost\n" + "".join(
    f"P{100000 + i},{20 + i % 60},{10000 + (i * 37) % 900},ICD-{i % 97},{i * 13 % 5000}.00\n"
    for i in range(1, 201))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_route(e: cce4long.PlaneError) -> bool:
    # The plane's answer for a path no route matches (src/http/server.cc).
    return e.status == 404 and e.message.endswith("no such resource")


class Plane:
    """cce-plane init + serve in a temp dir, with users made by cce-plane user add."""

    def __init__(self, bin_dir: Path, work: Path):
        self.bin = bin_dir
        self.work = work
        self.data = work / "plane"
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        init = json.loads(self.run("cce-plane", "init", "--data-dir", str(self.data), "--listen",
                                   f"127.0.0.1:{port}", "--simulated-tee", "--output", "json"))
        self.ca_file = init["ca_file"]
        self.op_token = init["token"]
        cfg = self.data / "plane.yaml"
        text = cfg.read_text()
        if "  backend: none\n" not in text:
            raise AssertionError(f"{cfg}: no 'provisioner: backend: none' line to switch to fake")
        text = text.replace("  backend: none\n", "  backend: fake\n", 1)
        # A curated base for script jobs (pushed as library/tiny:1 by the operator).
        if "  script_bases: []\n" not in text:
            raise AssertionError(f"{cfg}: no 'script_bases: []' line")
        text = text.replace("  script_bases: []\n", '  script_bases:\n    - {name: tiny, '
                            'image: "library/tiny:1", command: ["/bin/sh"]}\n', 1)
        cfg.write_text(text)
        self.log = open(work / "plane.log", "wb")
        self.proc = subprocess.Popen([str(bin_dir / "cce-plane"), "serve", "--data-dir",
                                      str(self.data)], stdout=self.log, stderr=subprocess.STDOUT)
        with open(self.ca_file) as f:
            ca = f.read()
        import ssl
        ctx = ssl.create_default_context(cadata=ca)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise AssertionError("cce-plane serve exited: " + self.log_tail())
            try:
                urllib.request.urlopen(self.url + "/healthz", context=ctx, timeout=2).read()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("cce-plane did not come up: " + self.log_tail())

    def log_tail(self) -> str:
        self.log.flush()
        return (self.work / "plane.log").read_text(errors="replace")[-3000:]

    def run(self, binary: str, *args: str, env=None) -> str:
        r = subprocess.run([str(self.bin / binary), *args], capture_output=True, text=True,
                           env=env, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"{binary} {args[0]}: exit {r.returncode}: {r.stderr}")
        return r.stdout

    def user(self, name: str, role: str) -> str:
        return json.loads(self.run("cce-plane", "user", "add", "--data-dir", str(self.data),
                                   "--role", role, name, "--output", "json"))["token"]

    def cli_env(self, token: str) -> dict:
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.work / "home"),
                "CCE_PLANE_URL": self.url, "CCE_TOKEN": token, "CCE_CA_FILE": self.ca_file}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def put_bytes(c: cce4long.Client, path: str, data: bytes, content_type: str) -> dict:
    with c._open("PUT", path, data, content_type, "application/json") as r:
        return json.loads(r.read())


def push_tiny_image(c: cce4long.Client, name: str, tag: str) -> str:
    """Pushes a one-layer linux/amd64 OCI image through the API; returns its digest."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        data = b"#!/bin/sh\necho hello\n"
        info = tarfile.TarInfo("app/run.sh")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        t.addfile(info, io.BytesIO(data))
    layer = buf.getvalue()

    def digest(b: bytes) -> str:
        return "sha256:" + hashlib.sha256(b).hexdigest()

    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["/app/run.sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(layer), "size": len(layer)}]}).encode()
    for blob in (layer, config):
        put_bytes(c, f"/api/v1/images/blobs/{digest(blob)}", blob, "application/octet-stream")
    r = put_bytes(c, f"/api/v1/images/{name}/tags/{tag}", manifest,
                  "application/vnd.oci.image.manifest.v1+json")
    return r["digest"]


class PlaneIntegrationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        bin_dir = os.environ.get("CCE_BIN_DIR")
        if not bin_dir or not (Path(bin_dir) / "cce-plane").is_file() or \
                not (Path(bin_dir) / "cce").is_file():
            raise AssertionError(
                f"CCE_BIN_DIR={bin_dir!r} has no cce-plane and cce: build them "
                "(cmake --build BUILD --target cce cce-plane) and set CCE_BIN_DIR=BUILD/bin "
                "(ctest does)")
        cls.tmp = tempfile.TemporaryDirectory(prefix="cce4long-it-")
        work = Path(cls.tmp.name)
        (work / "home").mkdir()
        cls.plane = Plane(Path(bin_dir), work)
        try:
            p = cls.plane
            cls.provider = p.user("hospital", "provider")
            cls.consumer = p.user("analyst", "consumer")
            cls.reviewer = p.user("rita", "reviewer")
            push_tiny_image(cce4long.Client(p.url, p.op_token, Path(p.ca_file).read_text()),
                            "library/tiny", "1")
            # The provider encrypts and registers the dataset with the real CLI.
            src = work / "claims" / "2026"
            src.mkdir(parents=True)
            (src / "claims.csv").write_text(CLAIMS)
            env = p.cli_env(cls.provider)
            key = work / "hc.key"
            p.run("cce", "key", "generate", "--out", str(key), env=env)
            dest = p.data / "datasets" / DATASET
            dest.parent.mkdir(parents=True, exist_ok=True)
            p.run("cce", "dataset", "encrypt", "--key", str(key), str(work / "claims"), str(dest),
                  env=env)
            p.run("cce", "dataset", "register", DATASET, "--key", str(key), "--location",
                  f"file://{dest}", "--description", "synthetic claims", "--price", "2.5",
                  env=env)
        except BaseException:
            cls.plane.stop()
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.plane.stop()
        cls.tmp.cleanup()

    def setUp(self):
        # No session file, no CLI config, no CCE_* variables: connect() only.
        p = mock.patch.dict(os.environ, {"HOME": str(Path(self.tmp.name) / "home"),
                                         "PATH": os.environ.get("PATH", "")}, clear=True)
        p.start()
        self.addCleanup(p.stop)
        q = mock.patch.object(_config, "SESSION_FILE", str(Path(self.tmp.name) / "none.json"))
        q.start()
        self.addCleanup(q.stop)
        self.addCleanup(_api._reset)
        self.c = cce4long.connect(url=self.plane.url, token=self.consumer, ca=self.plane.ca_file)

    def rent(self):
        if not any(d.rented for d in cce4long.datasets() if d.name == DATASET):
            self.c.post("/api/v1/rentals", {"dataset": DATASET, "days": 2})

    def test_1_datasets_show_the_catalog_and_the_rental(self):
        ds = {d.name: d for d in cce4long.datasets()}
        self.assertIn(DATASET, ds)
        d = ds[DATASET]
        self.assertEqual((d.owner, d.description, d.price), ("hospital", "synthetic claims", "2.5"))
        self.assertEqual(d.dataset_version, 1)
        self.assertTrue(d.rentals_known)
        self.assertFalse(d.rented)
        self.rent()
        d = {d.name: d for d in cce4long.datasets()}[DATASET]
        self.assertTrue(d.rented)
        self.assertGreater(d.rented_until, time.time() + 86400)

    def test_1b_the_cli_login_config_is_found(self):
        # `cce login` writes ~/.config/cce/config.yaml; the SDK reads that file.
        home = Path(self.tmp.name) / "home-cli"
        home.mkdir(exist_ok=True)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
        self.plane.run("cce", "login", "--plane", self.plane.url, "--token", self.consumer,
                       "--ca", self.plane.ca_file, env=env)
        os.environ["HOME"] = str(home)  # setUp's patch restores it
        _api._reset()
        self.assertIn(DATASET, [d.name for d in cce4long.datasets()])
        self.assertEqual(cce4long.client().source, str(home / ".config" / "cce" / "config.yaml"))

    def test_2_unknown_token_is_refused(self):
        cce4long.connect(url=self.plane.url, token="cce_" + "0" * 64, ca=self.plane.ca_file)
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.datasets()
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthenticated"))

    def test_3_job_submitted_through_the_api_waits_and_downloads(self):
        self.rent()
        push_tiny_image(self.c, "it/app", "1")
        spec = {"apiVersion": "cce4long/v1", "kind": "PrivacyJob",
                "metadata": {"name": "sdk-it"},
                "spec": {"image": "it/app:1", "command": ["/app/run.sh"],
                         "datasets": [{"name": DATASET, "mountPath": f"/data/{DATASET}"}],
                         "resources": {"cpus": 1, "memoryMiB": 256, "timeoutSeconds": 300,
                                       "outputMaxMiB": 16}}}
        created = self.c.post("/api/v1/jobs", spec)
        job = cce4long.job(created["id"])
        self.assertIn(job.id, [j.id for j in cce4long.jobs()])
        st = job.wait(timeout=60, poll=0.2, progress=False)
        self.assertIn(st.state, ("HELD", "RELEASED"), st)
        dest = Path(self.tmp.name) / "out.bundle"
        if st.state == "HELD":
            with self.assertRaises(cce4long.PlaneError) as cm:
                job.download(dest)
            self.assertEqual((cm.exception.status, cm.exception.code),
                             (409, "failed_precondition"))
            self.assertFalse(dest.exists())
            reviewer = cce4long.Client(self.plane.url, self.reviewer,
                                       Path(self.plane.ca_file).read_text())
            reviewer.post(f"/api/v1/reviews/{job.id}/approve", {"reason": "SDK integration test"})
            self.assertEqual(job.wait(timeout=30, poll=0.2, progress=False).state, "RELEASED")
        got = job.download(dest)
        data = got.read_bytes()
        self.assertIn(f"fake provisioner output for {job.id}".encode(), data)
        self.assertEqual("sha256:" + hashlib.sha256(data).hexdigest(),
                         job.status().output["digest"])
        with self.assertRaises(FileExistsError):
            job.download(dest)

    def test_4_sample_of_a_rented_dataset(self):
        self.rent()
        # Nothing published yet: the plane says so (404).
        with self.assertRaises(cce4long.PlaneError) as cm:
            cce4long.sample_files(DATASET)
        self.assertEqual(cm.exception.status, 404, cm.exception)
        self.assertFalse(missing_route(cm.exception), "the samples route is missing")
        # The provider publishes a sample (a tar of the sample directory).
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            body = CLAIMS.encode()
            info = tarfile.TarInfo("claims.csv")
            info.size, info.mode, info.mtime = len(body), 0o644, 0
            t.addfile(info, io.BytesIO(body))
        provider = cce4long.Client(self.plane.url, self.provider,
                                   Path(self.plane.ca_file).read_text())
        put_bytes(provider, f"/api/v1/datasets/{DATASET}/sample", buf.getvalue(),
                  "application/x-tar")
        [f] = cce4long.sample_files(DATASET)
        self.assertEqual(f.path, "claims.csv")
        self.assertEqual(f.sha256, hashlib.sha256(CLAIMS.encode()).hexdigest())
        df = cce4long.sample(DATASET)
        self.assertEqual(list(df.columns), ["patient_id", "age", "zip", "diagnosis", "cost"])
        self.assertEqual(len(df), 200)

    def test_5_script_job_and_bases(self):
        self.rent()
        bases = cce4long.bases()
        self.assertEqual([b.name for b in bases], ["tiny"])
        script = Path(self.tmp.name) / "analysis.py"
        shutil.copy(HERE.parent.parent / "examples" / "explore" / "analysis.py", script)
        job = cce4long.submit(script=script, datasets=[DATASET], base=bases[0].name)
        st = job.wait(timeout=60, poll=0.2, progress=False)
        self.assertIn(st.state, ("HELD", "RELEASED"), st)


if __name__ == "__main__":
    unittest.main()
