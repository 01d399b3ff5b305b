#!/usr/bin/python3
"""Independent reference implementation of docs/format.md (files, §2-§4).

Written from the spec alone with the `cryptography` package (not OpenSSL
calls shared with the C++ code paths). `check_vectors.py DIR` recomputes
every vector in DIR/vectors.json and fails on any difference, and opens each
sealed file to check it decrypts to the plaintext. `--generate DIR` writes
vectors.json. The C++ test FormatVectors.* must reproduce the same bytes.
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


def hkdf(ikm, salt, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt or None, info=info).derive(ikm)


def key_id(key):
    return hkdf(key, b"", b"cce4long/v1 key id", 16)


def header(key, kind, exponent, salt, size):
    return MAGIC + bytes([1, 1, exponent, kind]) + key_id(key) + salt + struct.pack("<Q", size)


def nonce(index, last):
    return struct.pack(">Q", index) + b"\x00\x00\x00" + bytes([1 if last else 0])


def seal(key, kind, exponent, salt, plaintext):
    h = header(key, kind, exponent, salt, len(plaintext))
    file_key = hkdf(key, salt, b"cce4long/v1 file key" + h, 32)
    seg = 1 << exponent
    count = max(1, (len(plaintext) + seg - 1) // seg)
    out = bytearray(h)
    gcm = AESGCM(file_key)
    for i in range(count):
        out += gcm.encrypt(nonce(i, i == count - 1), plaintext[i * seg:(i + 1) * seg], b"")
    return bytes(out)


def open_sealed(key, data, expected_kind):
    assert data[:8] == MAGIC and data[8] == 1 and data[9] == 1, "bad header"
    exponent, kind = data[10], data[11]
    assert kind == expected_kind and 12 <= exponent <= 24
    assert data[12:28] == key_id(key), "wrong key"
    salt, size = data[28:60], struct.unpack("<Q", data[60:68])[0]
    file_key = hkdf(key, salt, b"cce4long/v1 file key" + data[:68], 32)
    seg = 1 << exponent
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
    '"mtime":0,"path":"d/a.csv","size":10000,"type":"file"}],'
    '"format":"cce4long-dataset-manifest","format_version":1,"segment_size":4096}')


def build_vectors():
    key = bytes(range(32))
    salt = bytes(range(0x80, 0xa0))
    vectors = []
    for name, size in [("empty", 0), ("three-bytes", 3), ("one-full-segment", 4096),
                       ("three-segments", 10000)]:
        pt = b"abc" if size == 3 else pattern(size)
        ct = seal(key, 1, 12, salt, pt)
        vectors.append({"name": name, "kind": 1, "segment_exponent": 12,
                        "plaintext_hex": pt.hex(), "ciphertext_hex": ct.hex(),
                        "ciphertext_sha256": hashlib.sha256(ct).hexdigest()})
    data_header = bytes.fromhex(vectors[-1]["ciphertext_hex"])[:HEADER_SIZE]
    manifest = MANIFEST_JSON.replace("HDR", hashlib.sha256(data_header).hexdigest()).encode()
    ct = seal(key, 2, 12, salt, manifest)
    vectors.append({"name": "manifest", "kind": 2, "segment_exponent": 12,
                    "plaintext_hex": manifest.hex(), "ciphertext_hex": ct.hex(),
                    "ciphertext_sha256": hashlib.sha256(ct).hexdigest()})
    return {"key_hex": key.hex(), "key_id_hex": key_id(key).hex(), "salt_hex": salt.hex(),
            "vectors": vectors}


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
        tampered = bytearray.fromhex(want["ciphertext_hex"])
        tampered[-1] ^= 1
        try:
            open_sealed(key, bytes(tampered), want["kind"])
            print(f"vector {want['name']}: tampered tag accepted", file=sys.stderr)
            bad += 1
        except Exception:
            pass
    if len(stored["vectors"]) != len(fresh["vectors"]) or stored["key_id_hex"] != fresh["key_id_hex"]:
        print("vector set differs from the reference", file=sys.stderr)
        bad += 1
    print(f"{len(stored['vectors'])} vectors checked, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
