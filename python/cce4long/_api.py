"""cce4long's public calls: datasets, samples, script jobs."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Union

from . import _config
from ._client import DEFAULT_TIMEOUT_SECONDS, Client, PlaneError, quote_path, quote_segment

# Inside an Explore session the samples of the session's datasets are mounted
# read-only here, at the same path a Privacy Mode job sees the dataset.
DATA_ROOT = "/data"
# Where a script job sees each dataset (the job spec's mountPath).
JOB_DATA_ROOT = "/data"

_DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_JOB_ID = re.compile(r"^job-[0-9a-f]{1,64}$")
# Where Job.wait() stops: final states, and HELD (a reviewer decides next,
# which can take days).
FINAL_STATES = frozenset({"RELEASED", "REJECTED", "FAILED", "CANCELLED"})
WAIT_STATES = FINAL_STATES | {"HELD"}
# Sample formats the desensitizer writes (`cce dataset sample`).
_CSV = (".csv", ".csv.gz")
_JSONL = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")

_lock = threading.Lock()
_default: Optional[Client] = None


# --- configuration -----------------------------------------------------------

def connect(url: Optional[str] = None, token: Optional[str] = None, ca: Optional[str] = None,
            timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Client:
    """Chooses the plane for every later call and returns its Client.

    url: https://HOST[:PORT]; token: a bearer token (never printed); ca: the
    plane's CA as PEM text or the path of a PEM file. Arguments left out come
    from the session file, the environment or the `cce` config (see
    cce4long._config). Raises PlaneError(0, "not_configured") naming what is
    missing or unreadable."""
    global _default
    client = _config.explicit(url, token, ca).client(timeout)
    with _lock:
        _default = client
    return client


def client() -> Client:
    """The Client the module-level calls use (discovered on first use)."""
    global _default
    with _lock:
        if _default is None:
            _default = _config.discover().client(DEFAULT_TIMEOUT_SECONDS)
        return _default


def _reset() -> None:
    """Forgets the chosen plane (the next call discovers it again)."""
    global _default
    with _lock:
        _default = None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        raise ValueError(f"dataset name {name!r}: expected [a-z0-9][a-z0-9-]{{0,62}}")
    return name


def _check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"job id {job_id!r}: expected job-<hex>")
    return job_id


# --- datasets ------------------------------------------------------------------

@dataclass(frozen=True)
class Dataset:
    """One catalog entry, with the caller's rental of it when the plane shows it.

    rented_until: unix seconds the caller's current rental ends, None when the
    caller has no current rental (or the token may not list rentals: then
    rentals_known is False). sample_mounted: inside an Explore session, the
    dataset's sample is mounted at /data/<name>/."""

    name: str
    owner: str = ""
    description: str = ""
    price: str = ""
    max_days: int = 0
    location: str = ""
    dataset_id: str = ""
    dataset_version: int = 0
    created_at: int = 0
    rented_until: Optional[int] = None
    rentals_known: bool = True
    sample_mounted: bool = False  # inside a session: the sample is at /data/<name>/

    @property
    def rented(self) -> bool:
        return self.rented_until is not None and self.rented_until > time.time()


def _optional(c: Client, path: str) -> Any:
    """GET path, or None when the token may not use it (403)."""
    try:
        return c.get(path)
    except PlaneError as e:
        if e.status == 403:
            return None
        raise


def datasets() -> List[Dataset]:
    """The plane's dataset catalog (GET /api/v1/datasets), each with the
    caller's current rental from GET /api/v1/rentals."""
    c = client()
    listing = c.get("/api/v1/datasets").get("datasets") or []
    me = _optional(c, "/api/v1/whoami")
    rentals = _optional(c, "/api/v1/rentals")
    now = int(time.time())
    until = {}
    if rentals is not None:
        for r in rentals.get("rentals") or []:
            if me is not None and r.get("consumer") != me.get("name"):
                continue  # a provider sees others' rentals of its datasets
            if r.get("start", 0) <= now < r.get("end", 0):
                until[r["dataset"]] = max(until.get(r["dataset"], 0), r["end"])
    out = []
    for d in listing:
        out.append(Dataset(
            name=d.get("name", ""), owner=d.get("owner", ""),
            description=d.get("description", ""), price=d.get("price", ""),
            max_days=d.get("max_days", 0), location=d.get("location", ""),
            dataset_id=d.get("dataset_id", ""), dataset_version=d.get("dataset_version", 0),
            created_at=d.get("created_at", 0), rented_until=until.get(d.get("name")),
            rentals_known=rentals is not None,
            sample_mounted=_DATASET_NAME.match(d.get("name", "")) is not None
            and _in_session(c, d["name"]) is not None))
    return out


# --- samples -------------------------------------------------------------------

@dataclass(frozen=True)
class SampleFile:
    path: str  # relative to the sample's root, '/'-separated
    size: int
    sha256: str  # hex


def _in_session(c: Client, name: str) -> Optional[Path]:
    """The mounted sample directory when running inside an Explore session."""
    if c.session is None:
        return None
    d = Path(DATA_ROOT) / name
    return d if d.is_dir() else None


def _check_rel(path: str) -> str:
    parts = path.split("/")
    if (not path or path.startswith("/") or "\0" in path
            or any(p in ("", ".", "..") for p in parts)):
        raise ValueError(f"sample file {path!r}: expected a relative path without '.' or '..'")
    return path


def _local_files(root: Path) -> List[SampleFile]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if not p.is_file():
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for piece in iter(lambda: f.read(1 << 20), b""):
                    h.update(piece)
            out.append(SampleFile(p.relative_to(root).as_posix(), p.stat().st_size, h.hexdigest()))
    return sorted(out, key=lambda f: f.path)


def _remote_listing(c: Client, name: str) -> dict:
    return c.get(f"/api/v1/datasets/{quote_segment(name)}/sample")


def _hex(digest: str) -> str:
    return digest[len("sha256:"):] if digest.startswith("sha256:") else digest


def sample_files(name: str) -> List[SampleFile]:
    """The files of a dataset's published sample: the mounted copy inside a
    session, else the plane's listing (GET /api/v1/datasets/{name}/sample)."""
    c = client()
    local = _in_session(c, _check_name(name))
    if local is not None:
        return _local_files(local)
    listing = _remote_listing(c, name)
    return [SampleFile(f["path"], int(f["size"]), _hex(f["sha256"]))
            for f in listing.get("files") or []]


def _is_table(path: str) -> bool:
    return path.lower().endswith(_CSV + _JSONL)


def _read_table(source: Any, path: str):
    import pandas as pd  # only here: the rest of the SDK needs no pandas

    lower = path.lower()
    compression = "gzip" if lower.endswith(".gz") else None
    if lower.endswith(_CSV):
        return pd.read_csv(source, compression=compression)
    if lower.endswith(_JSONL):
        return pd.read_json(source, lines=True, compression=compression)
    raise ValueError(f"sample file {path!r}: not CSV (.csv) or JSON Lines (.jsonl, .ndjson)")


def _download_sample_file(c: Client, name: str, f: SampleFile) -> bytes:
    buf = bytearray()
    h = hashlib.sha256()

    def sink(piece: bytes) -> None:
        if len(buf) + len(piece) > f.size:
            raise PlaneError(200, "data_loss",
                             f"sample of {name}: {f.path}: more than the {f.size} bytes listed")
        buf.extend(piece)
        h.update(piece)

    c.stream(f"/api/v1/datasets/{quote_segment(name)}/sample/files/{quote_path(f.path.split('/'))}",
             sink)
    if len(buf) != f.size:
        raise PlaneError(200, "data_loss",
                         f"sample of {name}: {f.path}: received {len(buf)} bytes, listed {f.size}")
    if h.hexdigest() != f.sha256:
        raise PlaneError(200, "data_loss", f"sample of {name}: {f.path}: bytes hash to "
                         f"{h.hexdigest()}, the listing says {f.sha256}")
    return bytes(buf)


def sample(name: str, file: Optional[str] = None):
    """A dataset's desensitized sample as one pandas DataFrame.

    Inside an Explore session it reads /data/<name>/ directly; elsewhere it
    downloads the published sample from the plane (a rental is needed) and
    checks each file's size and SHA-256 against the listing. Every CSV and
    JSON Lines file is read and the tables concatenated (in path order);
    file= reads only that one (a path relative to the sample's root)."""
    import pandas as pd

    c = client()
    _check_name(name)
    if file is not None:
        _check_rel(file)
    local = _in_session(c, name)
    if local is not None:
        files = [f.path for f in _local_files(local)] if file is None else [file]
        frames = []
        for rel in files:
            if file is None and not _is_table(rel):
                continue
            p = local / rel
            if not p.is_file():
                raise FileNotFoundError(f"sample of {name}: no file {rel!r} in {local}")
            frames.append(_read_table(p, rel))
    else:
        listing = [SampleFile(f["path"], int(f["size"]), _hex(f["sha256"]))
                   for f in _remote_listing(c, name).get("files") or []]
        if file is not None:
            listing = [f for f in listing if f.path == file]
            if not listing:
                raise FileNotFoundError(f"sample of {name}: the plane lists no file {file!r}")
        else:
            listing = [f for f in listing if _is_table(f.path)]
        frames = [_read_table(io.BytesIO(_download_sample_file(c, name, f)), f.path)
                  for f in listing]
    if not frames:
        raise FileNotFoundError(f"sample of {name}: no CSV or JSON Lines file in it")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


# --- bases ---------------------------------------------------------------------

@dataclass(frozen=True)
class Base:
    """A curated base image a script job runs on (GET /api/v1/explore/bases)."""

    name: str
    image: str = ""
    command: Sequence[str] = ()


def bases() -> List[Base]:
    out = []
    for b in client().get("/api/v1/explore/bases").get("bases") or []:
        cmd = b.get("command") or ()
        out.append(Base(name=b.get("name", ""), image=b.get("image", ""),
                        command=tuple(cmd) if isinstance(cmd, list) else (str(cmd),)))
    return out


# --- jobs ----------------------------------------------------------------------

class JobStatus(dict):
    """GET /api/v1/jobs/{id} as a dict, with .state, .reason and .output."""

    @property
    def state(self) -> str:
        return self.get("state", "")

    @property
    def reason(self) -> str:
        return self.get("reason", "")

    @property
    def output(self) -> Optional[dict]:
        return self.get("output")


class Job:
    """A Privacy Mode job of the caller's."""

    def __init__(self, c: Client, data: dict):
        self._client = c
        self.id = _check_job_id(data.get("id", ""))
        self.name = data.get("name", "")
        self._last = JobStatus(data)

    def __repr__(self) -> str:
        return f"Job({self.id!r}, name={self.name!r}, state={self._last.state!r})"

    @property
    def state(self) -> str:
        """The state last seen (status() asks the plane)."""
        return self._last.state

    def status(self) -> JobStatus:
        self._last = JobStatus(self._client.get(f"/api/v1/jobs/{self.id}"))
        return self._last

    def cancel(self) -> JobStatus:
        self._last = JobStatus(self._client.post(f"/api/v1/jobs/{self.id}/cancel", {}))
        return self._last

    def wait(self, timeout: Optional[float] = None, poll: float = 2.0,
             progress: bool = True) -> JobStatus:
        """Polls until the job is RELEASED, HELD, REJECTED, FAILED or CANCELLED
        and returns that status; TimeoutError after timeout seconds. Shows one
        progress line (updated in place in a notebook or a terminal)."""
        start = time.monotonic()
        line = _ProgressLine(self.id) if progress else None
        while True:
            st = self.status()
            if line is not None:
                line.show(st, time.monotonic() - start)
            if st.state in WAIT_STATES:
                if line is not None:
                    line.done()
                return st
            if timeout is not None and time.monotonic() - start >= timeout:
                raise TimeoutError(f"{self.id}: still {st.state} after {timeout:g} s")
            time.sleep(poll if timeout is None
                       else max(0.0, min(poll, timeout - (time.monotonic() - start))))

    def download(self, path: Union[str, os.PathLike], overwrite: bool = False) -> Path:
        """Writes a RELEASED job's output bundle (a tar: result.json, files/...,
        stdout.txt, stderr.txt, manifest.json) to path (a directory: to
        path/output.bundle) and returns where.

        The bytes go to a temporary file beside path and are renamed into
        place only once their size and SHA-256 match what the plane recorded
        at submission (GET /jobs/{id}: output.size, output.digest) and
        X-Output-Digest; nothing is left behind on any failure. An existing
        file is never replaced unless overwrite=True (FileExistsError)."""
        dest = Path(path)
        if dest.is_dir():
            dest = dest / "output.bundle"
        if dest.exists() and not overwrite:
            raise FileExistsError(errno.EEXIST, "refusing to overwrite (pass overwrite=True)",
                                  str(dest))
        st = self.status()
        out = st.output or {}
        want_digest, want_size = out.get("digest"), out.get("size")
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.partial-")
        try:
            h = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as f:
                def sink(piece: bytes) -> None:
                    nonlocal size
                    f.write(piece)
                    h.update(piece)
                    size += len(piece)

                headers = self._client.stream(f"/api/v1/jobs/{self.id}/output", sink)
                f.flush()
                os.fsync(f.fileno())
            got = "sha256:" + h.hexdigest()
            what = f"output of {self.id}"
            announced = headers.get("content-length")
            if announced is not None and int(announced) != size:
                raise PlaneError(200, "data_loss", f"{what}: received {size} bytes of "
                                 f"{announced} (the plane cut the stream short)")
            if want_size is not None and size != want_size:
                raise PlaneError(200, "data_loss", f"{what}: received {size} bytes, the plane "
                                 f"recorded {want_size}")
            if got != want_digest:
                raise PlaneError(200, "data_loss", f"{what}: downloaded bytes hash to {got}, "
                                 f"the plane recorded {want_digest or 'no digest'}")
            header_digest = headers.get("x-output-digest")
            if header_digest is not None and header_digest != got:
                raise PlaneError(200, "data_loss", f"{what}: X-Output-Digest is "
                                 f"{header_digest}, the bytes hash to {got}")
            _place(tmp, dest, overwrite)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return dest


def _place(tmp: str, dest: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, dest)
        return
    # link() fails if dest appeared meanwhile: never replaces a file.
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "refusing to overwrite (pass overwrite=True)",
                              str(dest)) from None
    os.unlink(tmp)


class _ProgressLine:
    def __init__(self, job_id: str):
        self.job_id = job_id
        self.handle = None
        self.last = None
        try:
            from IPython import get_ipython
            from IPython.display import display
            shell = get_ipython()
            if shell is not None and getattr(shell, "kernel", None) is not None:
                self.handle = display(f"{job_id}: waiting", display_id=True)
        except Exception:  # no IPython: plain stderr
            self.handle = None
        self.tty = self.handle is None and sys.stderr.isatty()

    def show(self, st: JobStatus, elapsed: float) -> None:
        text = f"{self.job_id}: {st.state} after {elapsed:.0f} s ({st.reason})"
        if self.handle is not None:
            self.handle.update(text)
        elif self.tty:
            sys.stderr.write("\r\x1b[K" + text)
            sys.stderr.flush()
        elif st.state != self.last:
            sys.stderr.write(text + "\n")
        self.last = st.state

    def done(self) -> None:
        if self.handle is None and self.tty:
            sys.stderr.write("\n")


def _dataset_entries(items: Union[str, Iterable[Union[str, dict]]]) -> List[dict]:
    if isinstance(items, str):
        items = [items]
    out = []
    for i, d in enumerate(items):
        if isinstance(d, str):
            out.append({"name": _check_name(d), "mountPath": f"{JOB_DATA_ROOT}/{d}"})
        elif isinstance(d, dict) and isinstance(d.get("name"), str):
            entry = {"name": _check_name(d["name"]),
                     "mountPath": d.get("mountPath") or f"{JOB_DATA_ROOT}/{d['name']}"}
            out.append(entry)
        else:
            raise ValueError(f"datasets[{i}]: expected a dataset name or "
                             "{'name': ..., 'mountPath': ...}")
    if not out:
        raise ValueError("datasets: name at least one dataset the job reads")
    return out


def submit(script: Union[str, os.PathLike] = "analysis.py",
           datasets: Union[str, Iterable[Union[str, dict]]] = (),
           base: str = "python-data", args: Optional[Sequence[str]] = None,
           resources: Optional[dict] = None, name: Optional[str] = None) -> Job:
    """Submits script (a file, relative to the current directory: in a
    notebook, the home directory) as a Privacy Mode job on the curated base
    image `base`, with each dataset mounted at /data/<name> (where the sample
    is in the session, so the same script runs in both). POST /api/v1/jobs/script."""
    p = Path(script)
    content = p.read_bytes()
    body: dict = {
        "base": base,
        "script": {"name": p.name, "content_base64": base64.b64encode(content).decode("ascii")},
        "datasets": _dataset_entries(datasets),
    }
    if name is not None:
        body["name"] = name
    if args is not None:
        body["args"] = [str(a) for a in args]
    if resources is not None:
        body["resources"] = dict(resources)
    c = client()
    return Job(c, c.post("/api/v1/jobs/script", body))


def job(job_id: str) -> Job:
    """One of the caller's jobs (GET /api/v1/jobs/{id})."""
    c = client()
    return Job(c, c.get(f"/api/v1/jobs/{_check_job_id(job_id)}"))


def jobs(state: Optional[str] = None) -> List[Job]:
    """The caller's jobs, newest first (GET /api/v1/jobs, every page)."""
    c = client()
    out: List[Job] = []
    offset = 0
    while True:
        q = f"?offset={offset}" + (f"&state={quote_segment(state)}" if state else "")
        page = c.get("/api/v1/jobs" + q)
        out.extend(Job(c, j) for j in page.get("jobs") or [])
        nxt = page.get("next_offset")
        if not isinstance(nxt, int) or nxt <= offset:
            return out
        offset = nxt
