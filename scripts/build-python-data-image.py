#!/usr/bin/python3
"""Builds the python-data base image (Python 3.11, numpy, pandas) as an OCI layout, offline.

The curated base of script jobs (docs/explore/script-jobs.md). Its root
filesystem is Debian's own packages: python3.11-minimal, libpython3.11-minimal,
libpython3.11-stdlib, python3-numpy, python3-pandas, python3-pandas-lib,
python3-dateutil, python3-tz, python3-six, and the packages owning every shared
library their ELF files need (found with ldd on the host's installed copies and
`dpkg -S`: libc6, zlib1g, libexpat1, libffi8, libssl3, libblas3, liblapack3,
libgfortran5, ...). Each .deb is fetched with `apt-get download` into --cache
and unpacked with `dpkg-deb -x`; when a download fails, the installed package's
files (`dpkg -L`) are copied instead. Paths that Debian's maintainer scripts
would make (update-alternatives links such as libblas.so.3, /usr/bin/python3)
are added as symlinks. Documentation, man pages and locales are left out.

Everything is written deterministically (sorted entries, owner 0, mtime 0,
gzip without a timestamp), so the same packages give the same manifest digest.

usage: build-python-data-image.py --out DIR [--ref NAME:TAG] [--cache DIR]
Prints the manifest digest and the image's size.
"""
import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOTS = ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3-numpy",
         "python3-pandas", "python3-pandas-lib", "python3-dateutil", "python3-tz", "python3-six",
         "tzdata"]  # pytz and pandas read /usr/share/zoneinfo
# Paths no job needs (and that make the layer several times larger).
SKIP = re.compile(r"^(usr/share/(doc|man|info|locale|lintian|bug)/|usr/lib/python3/dist-packages/"
                  r"(numpy|pandas)/.*/tests?/)")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def arch():
    return run(["dpkg", "--print-architecture"]).stdout.strip() or "amd64"


def package_of(path):
    """The installed package owning `path` (following the host's /usr merge), or None."""
    for p in [path, os.path.realpath(path)] + (
            [path[4:]] if path.startswith("/usr/lib/") else ["/usr" + path]):
        r = run(["dpkg", "-S", p])
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def elf_files(pkg):
    r = run(["dpkg", "-L", pkg])
    if r.returncode != 0:
        return []
    out = []
    for f in r.stdout.splitlines():
        if os.path.isfile(f) and not os.path.islink(f) and (
                f.endswith(".so") or ".so." in f or f.startswith("/usr/bin/")):
            with open(f, "rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    out.append(f)
    return out


def closure():
    """ROOTS plus the packages owning each library ldd resolves, and the library paths."""
    pkgs, libs = set(ROOTS), set()
    for pkg in ROOTS:
        for f in elf_files(pkg):
            for line in run(["ldd", f]).stdout.splitlines():
                m = re.search(r"(/\S+) \(0x", line)
                if m:
                    libs.add(m.group(1))
    for lib in sorted(libs):
        owner = package_of(lib)
        if owner:
            pkgs.add(owner.split(",")[0])
        else:
            print("build-python-data-image: no package owns %s (left out)" % lib, file=sys.stderr)
    return sorted(pkgs), sorted(libs)


def fetch(pkg, cache, root):
    """Unpacks pkg into root; returns where it came from."""
    debs = sorted(glob.glob(os.path.join(cache, pkg + "_*.deb")))
    if not debs:
        run(["apt-get", "download", pkg + ":" + arch()], cwd=cache)
        debs = sorted(glob.glob(os.path.join(cache, pkg + "_*.deb")))
        if not debs:  # Architecture: all
            run(["apt-get", "download", pkg], cwd=cache)
            debs = sorted(glob.glob(os.path.join(cache, pkg + "_*.deb")))
    if debs:
        subprocess.run(["dpkg-deb", "-x", debs[-1], root], check=True)
        return os.path.basename(debs[-1])
    r = run(["dpkg", "-L", pkg])
    if r.returncode != 0:
        return None
    for f in r.stdout.splitlines():
        if f in ("/.", "/") or not os.path.lexists(f):
            continue
        dest = os.path.join(root, f.lstrip("/"))
        if os.path.isdir(f) and not os.path.islink(f):
            os.makedirs(dest, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.lexists(dest):
            continue
        if os.path.islink(f):
            os.symlink(os.readlink(f), dest)
        else:
            shutil.copy2(f, dest)
    return "installed " + pkg + " (dpkg -L)"


def link_missing(root, libs):
    """Libraries the host reaches through links no package ships (update-alternatives)."""
    for lib in libs:
        rel = lib.lstrip("/")
        if os.path.lexists(os.path.join(root, rel)):
            continue
        real = os.path.realpath(lib).lstrip("/")
        for candidate in [real, real[4:] if real.startswith("usr/") else "usr/" + real]:
            if os.path.exists(os.path.join(root, candidate)):
                os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
                os.symlink("/" + candidate, os.path.join(root, rel))
                break
        else:
            print("build-python-data-image: %s: not in the image" % lib, file=sys.stderr)


def add_tree(tar, root):
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            entries.append(os.path.relpath(full, root))
    total = 0
    for rel in sorted(entries):
        if SKIP.match(rel + ("/" if os.path.isdir(os.path.join(root, rel)) else "")):
            continue
        full = os.path.join(root, rel)
        st = os.lstat(full)
        info = tarfile.TarInfo(rel)
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
        if os.path.islink(full):
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, os.readlink(full), 0o777
            tar.addfile(info)
        elif os.path.isdir(full):
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            info.size, info.mode = st.st_size, 0o755 if st.st_mode & 0o111 else 0o644
            with open(full, "rb") as f:
                tar.addfile(info, f)
            total += st.st_size
    return total


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="OCI layout directory to (re)create")
    ap.add_argument("--ref", default="library/python-data:3.11", help="NAME:TAG recorded in it")
    ap.add_argument("--cache", default="build/python-data-cache", help="where the .debs are kept")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)

    pkgs, libs = closure()
    sources, missing = [], []
    with tempfile.TemporaryDirectory() as root:
        for pkg in pkgs:
            src = fetch(pkg, os.path.abspath(a.cache), root)
            (sources if src else missing).append(src or pkg)
        if missing:
            sys.exit("build-python-data-image: neither apt-get download nor dpkg -L gave "
                     + ", ".join(missing) + " (apt-get install them, or run with network)")
        link_missing(root, libs)
        for d in ["tmp", "job", "etc", "usr/bin"]:
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o755)
        if not os.path.lexists(os.path.join(root, "usr/bin/python3")):
            os.symlink("python3.11", os.path.join(root, "usr/bin/python3"))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/usr/sbin/nologin\n"
                    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
        with open(os.path.join(root, "etc/group"), "w") as f:
            f.write("root:x:0:\nnogroup:x:65534:\n")
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            files_bytes = add_tree(tar, root)
    layer_tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=6) as z:
        z.write(layer_tar)
    layer_gz = gz.getvalue()

    if os.path.isdir(a.out):
        shutil.rmtree(a.out)
    os.makedirs(os.path.join(a.out, "blobs", "sha256"))
    layer_digest = put_blob(a.out, layer_gz)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8",
                           "PYTHONDONTWRITEBYTECODE=1", "MPLCONFIGDIR=/tmp"],
                   "User": "65534:65534", "WorkingDir": "/job", "Cmd": ["/usr/bin/python3"],
                   "Labels": {"org.cce4long.base": "python-data",
                              "org.cce4long.packages": " ".join(sorted(sources))}},
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created_by": "scripts/build-python-data-image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = put_blob(a.out, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": len(layer_gz)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = put_blob(a.out, manifest_bytes)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": manifest["mediaType"], "digest": manifest_digest,
                            "size": len(manifest_bytes),
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"org.opencontainers.image.ref.name": a.ref}}]}
    with open(os.path.join(a.out, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    downloaded = sum(1 for s in sources if s.endswith(".deb"))
    print("%s -> %s: %d packages (%d downloaded, %d from the installed system); "
          "%.1f MB of files, layer %.1f MB compressed" %
          (a.ref, manifest_digest, len(sources), downloaded, len(sources) - downloaded,
           files_bytes / 1e6, len(layer_gz) / 1e6))


if __name__ == "__main__":
    main()
