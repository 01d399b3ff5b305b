#!/usr/bin/python3
"""Independent reference implementation of docs/format.md, version 2 (files, §2-§4).

Written from the spec alone with the `cryptography` package (not OpenSSL
calls shared with the C++ code paths). `check_vectors.py DIR` recomputes
every vector in DIR/vectors.json and fails on any difference, and opens each
sealed file to check it decrypts to the plaintext. `--generate DIR` writes
vectors.json. The C++ test FormatVectors.* must reproduce the same bytes and
refuse every header in "refused_headers" with a message containing its "error".
"""
import hashlib
import json
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"CCE4DSF\n"
HEADER_SIZE = 68
VERSION = 2
EXPONENT = 12  # the only segment (block) size in version 2: 4 KiB


def hkdf(ikm, salt, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt or None, info=info).derive(ikm)


def key_id(key):
    return hkdf(key, b"", b"cce4long/v1 key id", 16)


def header(key, kind, exponent, salt, size, version=VERSION):
    return (MAGIC + bytes([version, 1, exponent, kind]) + key_id(key) + salt +
            struct.pack("<Q", size))


def nonce(index, last):
    return struct.pack(">Q", index) + b"\x00\x00\x00" + bytes([1 if last else 0])


def seal(key, kind, exponent, salt, plaintext):
    h = header(key, kind, exponent, salt, len(plaintext))
    file_key = hkdf(key, salt, b"cce4long/v2 file key" + h, 32)
    seg = 1 << exponent
    count = max(1, (len(plaintext) + seg - 1) // seg)
    out = bytearray(h)
    gcm = AESGCM(file_key)
    for i in range(count):
        out += gcm.encrypt(nonce(i, i == count - 1), plaintext[i * seg:(i + 1) * seg], b"")
    return bytes(out)


def check_header(key, data, expected_kind):
    """The header checks of docs/format.md §3.1 and §2; returns (salt, size)."""
    assert len(data) >= HEADER_SIZE, "short header"
    assert data[:8] == MAGIC, "bad magic"
    assert data[8] != 1, "version 1 (dropped in format v2)"
    assert data[8] == VERSION and data[9] == 1, "bad version or algorithm"
    exponent, kind = data[10], data[11]
    assert kind == expected_kind and exponent == EXPONENT, "bad kind or exponent"
    assert data[12:28] == key_id(key), "wrong key"
    return data[28:60], struct.unpack("<Q", data[60:68])[0]


def open_sealed(key, data, expected_kind):
    salt, size = check_header(key, data, expected_kind)
    file_key = hkdf(key, salt, b"cce4long/v2 file key" + data[:68], 32)
    seg = 1 << EXPONENT
    count = max(1, (size + seg - 1) // seg)
    assert len(data) == HEADER_SIZE + size + 16 * count, "truncated or extended"
    gcm, out, off = AESGCM(file_key), bytearray(), HEADER_SIZE
    for i in range(count):
        n = min(seg, size - i * seg) + 16
        out += gcm.decrypt(nonce(i, i == count - 1), data[off:off + n], b"")
        off += n
    return bytes(out)


def pattern(n):
    return bytes((i * 7 + 3) % 251 for i in range(n))


MANIFEST_JSON = (
    '{"created_at":"2026-11-25T00:00:00Z","dataset_id":"example","dataset_version":1,'
    '"entries":[{"mode":493,"mtime":0,"path":"d","type":"dir"},'
    '{"header_sha256":"HDR","id":"000102030405060708090a0b0c0d0e0f","mode":420,'
    '"mtime":0,"path":"d/a.csv","size":SIZE,"type":"file"}],'
    '"format":"cce4long-dataset-manifest","format_version":1,"segment_size":4096}')


def build_vectors():
    key = bytes(range(32))
    salt = bytes(range(0x80, 0xa0))
    vectors = []
    for name, size in [("empty", 0), ("one-byte", 1), ("one-full-segment", 4096),
                       ("one-segment-and-one-byte", 4097), ("five-segments", 4 * 4096 + 7)]:
        pt = b"a" if size == 1 else pattern(size)
        ct = seal(key, 1, EXPONENT, salt, pt)
        vectors.append({"name": name, "kind": 1, "segment_exponent": EXPONENT,
                        "plaintext_hex": pt.hex(), "ciphertext_hex": ct.hex(),
                        "ciphertext_sha256": hashlib.sha256(ct).hexdigest()})
    data_header = bytes.fromhex(vectors[-1]["ciphertext_hex"])[:HEADER_SIZE]
    manifest = (MANIFEST_JSON.replace("HDR", hashlib.sha256(data_header).hexdigest())
                .replace("SIZE", str(4 * 4096 + 7)).encode())
    ct = seal(key, 2, EXPONENT, salt, manifest)
    vectors.append({"name": "manifest", "kind": 2, "segment_exponent": EXPONENT,
                    "plaintext_hex": manifest.hex(), "ciphertext_hex": ct.hex(),
                    "ciphertext_sha256": hashlib.sha256(ct).hexdigest()})
    # Headers a version 2 reader must refuse, with a word its message contains.
    refused = [
        {"name": "version-1", "error": "version 1 (dropped in format v2",
         "header_hex": header(key, 1, 16, salt, 10000, version=1).hex()},
        {"name": "version-3", "error": "header byte 8",
         "header_hex": header(key, 1, EXPONENT, salt, 10000, version=3).hex()},
        {"name": "exponent-16", "error": "header byte 10",
         "header_hex": header(key, 1, 16, salt, 10000).hex()},
    ]
    return {"key_hex": key.hex(), "key_id_hex": key_id(key).hex(), "salt_hex": salt.hex(),
            "vectors": vectors, "refused_headers": refused}


def must_fail(what, fn):
    try:
        fn()
    except Exception:  # noqa: BLE001 - any refusal will do
        return 0
    print(f"{what}: accepted", file=sys.stderr)
    return 1


def main(argv):
    if len(argv) == 3 and argv[1] == "--generate":
        with open(argv[2] + "/vectors.json", "w") as f:
            json.dump(build_vectors(), f, indent=1)
            f.write("\n")
        return 0
    if len(argv) != 2:
        print("usage: check_vectors.py [--generate] DIR", file=sys.stderr)
        return 2
    with open(argv[1] + "/vectors.json") as f:
        stored = json.load(f)
    fresh = build_vectors()
    key = bytes.fromhex(stored["key_hex"])
    bad = 0
    for want, got in zip(stored["vectors"], fresh["vectors"]):
        if want != got:
            print(f"vector {want['name']}: stored bytes differ from the reference", file=sys.stderr)
            bad += 1
        pt = open_sealed(key, bytes.fromhex(want["ciphertext_hex"]), want["kind"])
        if pt.hex() != want["plaintext_hex"]:
            print(f"vector {want['name']}: does not decrypt to its plaintext", file=sys.stderr)
            bad += 1
        ct = bytes.fromhex(want["ciphertext_hex"])
        tampered = bytearray(ct)
        tampered[-1] ^= 1
        bad += must_fail(f"vector {want['name']}: tampered tag",
                         lambda: open_sealed(key, bytes(tampered), want["kind"]))
        sealed = HEADER_SIZE + 4096 + 16
        if len(ct) > 2 * sealed - HEADER_SIZE:  # at least two full segments: swap 0 and 1
            second = 2 * sealed - HEADER_SIZE
            swapped = (ct[:HEADER_SIZE] + ct[sealed:second] + ct[HEADER_SIZE:sealed] +
                       ct[second:])
            bad += must_fail(f"vector {want['name']}: reordered segments",
                             lambda: open_sealed(key, swapped, want["kind"]))
        if len(ct) > sealed:  # cut at a segment boundary, header length adjusted
            cut = bytearray(ct[:sealed])
            cut[60:68] = struct.pack("<Q", 4096)
            bad += must_fail(f"vector {want['name']}: truncated at a segment boundary",
                             lambda: open_sealed(key, bytes(cut), want["kind"]))
    for r in stored.get("refused_headers", []):
        bad += must_fail(f"refused header {r['name']}",
                         lambda: check_header(key, bytes.fromhex(r["header_hex"]), 1))
    if (len(stored["vectors"]) != len(fresh["vectors"]) or stored["key_id_hex"] != fresh["key_id_hex"]
            or stored.get("refused_headers") != fresh["refused_headers"]):
        print("vector set differs from the reference", file=sys.stderr)
        bad += 1
    print(f"{len(stored['vectors'])} vectors checked, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
