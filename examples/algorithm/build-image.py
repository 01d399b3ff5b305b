#!/usr/bin/python3
"""Builds the demo's algorithm image as an OCI image layout, offline.

The root filesystem is Debian's busybox-static package (downloaded with
`apt-get download` into --cache, or taken from the installed package when the
download is not possible) plus the files given with --add. Everything is
written deterministically (sorted entries, owner 0, mtime 0, gzip without a
timestamp), so the same inputs give the same manifest digest.

usage: build-image.py --out DIR --ref NAME:TAG [--cache DIR] [--busybox FILE]
                      [--add SRC:DEST]... [--cmd COMMAND]
"""
import argparse
import glob
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

APPLETS = ["sh", "awk", "cat", "echo", "find", "head", "ls", "mkdir", "sort", "tail",
           "tr", "wc", "sed", "grep", "cut", "uniq", "sleep", "id", "env", "true", "false",
           "nc", "cp", "rm", "touch", "ln", "mkfifo", "stat", "dd"]


def busybox_binary(cache, given):
    if given:
        return open(given, "rb").read(), given
    os.makedirs(cache, exist_ok=True)
    debs = sorted(glob.glob(os.path.join(cache, "busybox-static_*.deb")))
    if not debs:
        r = subprocess.run(["apt-get", "download", "busybox-static"], cwd=cache,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        debs = sorted(glob.glob(os.path.join(cache, "busybox-static_*.deb")))
        if not debs:
            print("build-image: apt-get download busybox-static failed; using the installed "
                  "package's /bin/busybox\n" + r.stdout.strip(), file=sys.stderr)
            if not os.path.exists("/bin/busybox"):
                sys.exit("build-image: no busybox-static package: apt-get install busybox-static")
            return open("/bin/busybox", "rb").read(), "installed busybox-static"
    with tempfile.TemporaryDirectory() as x:
        subprocess.run(["dpkg-deb", "-x", debs[-1], x], check=True)
        return open(os.path.join(x, "bin", "busybox"), "rb").read(), os.path.basename(debs[-1])


def add_file(tar, name, data, mode):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
    info.uname = info.gname = "root"
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def add_symlink(tar, name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
    tar.addfile(info)


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="OCI layout directory to (re)create")
    ap.add_argument("--ref", required=True, help="NAME:TAG recorded as the image's ref name")
    ap.add_argument("--cache", default="build/example-image-cache", help="where the .deb is kept")
    ap.add_argument("--add", action="append", default=[], metavar="SRC:DEST",
                    help="a file to add (DEST absolute in the image; mode kept)")
    ap.add_argument("--cmd", default="", help="the image's default command (space separated)")
    ap.add_argument("--busybox", default="", help="use this static busybox binary (tests) "
                    "instead of the busybox-static package")
    a = ap.parse_args()

    busybox, source = busybox_binary(a.cache, a.busybox)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ["bin", "etc", "app", "tmp"]:
            add_dir(tar, d)
        add_file(tar, "bin/busybox", busybox, 0o755)
        for applet in APPLETS:
            add_symlink(tar, "bin/" + applet, "busybox")
        add_file(tar, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n", 0o644)
        add_file(tar, "etc/group", b"root:x:0:\nuser:x:1000:\n", 0o644)
        for spec in sorted(a.add):
            src, _, dest = spec.partition(":")
            if not dest.startswith("/"):
                sys.exit("build-image: --add %s: DEST must be absolute" % spec)
            data = open(src, "rb").read()
            add_file(tar, dest.lstrip("/"), data, os.stat(src).st_mode & 0o755)
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
        "config": {"Env": ["PATH=/bin"], "User": "1000:1000", "WorkingDir": "/",
                   "Cmd": a.cmd.split() if a.cmd else ["/bin/sh"],
                   "Labels": {"org.cce4long.base": source}},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
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
    print("%s -> %s (%d bytes, base: %s)" % (a.ref, manifest_digest, len(layer_gz), source))


if __name__ == "__main__":
    main()
