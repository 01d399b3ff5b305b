"""A local HTTPS server standing in for the plane in the SDK's unit tests.

It serves TLS with a certificate for 127.0.0.1 signed by a throwaway CA (made
with the `cryptography` package), records every request (method, path,
headers, body) and answers from a table the test fills in.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import os
import ssl
import tempfile
import threading
from typing import Callable, Dict, List, Optional, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_ca_and_server_cert() -> Tuple[str, str, str]:
    """(ca_pem, server_cert_pem, server_key_pem) for 127.0.0.1."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake plane CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem).decode(), cert.public_bytes(pem).decode(),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


class Recorded:
    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


Reply = Union[Tuple[int, Union[dict, bytes]], Tuple[int, Union[dict, bytes], Dict[str, str]],
              Callable[["http.server.BaseHTTPRequestHandler"], None]]


class FakePlane:
    """Routes: {(METHOD, PATH_WITH_QUERY): reply or [replies...]}. A list is
    consumed one reply per request (the last one repeats)."""

    def __init__(self):
        self.ca_pem, cert, key = make_ca_and_server_cert()
        self._dir = tempfile.TemporaryDirectory()
        cert_file = os.path.join(self._dir.name, "cert.pem")
        key_file = os.path.join(self._dir.name, "key.pem")
        with open(cert_file, "w") as f:
            f.write(cert)
        with open(key_file, "w") as f:
            f.write(key)
        self.ca_file = os.path.join(self._dir.name, "ca.pem")
        with open(self.ca_file, "w") as f:
            f.write(self.ca_pem)
        self.routes: Dict[Tuple[str, str], Union[Reply, List[Reply]]] = {}
        self.requests: List[Recorded] = []
        plane = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                plane.requests.append(Recorded(self.command, self.path,
                                               {k.lower(): v for k, v in self.headers.items()},
                                               body))
                reply = plane.routes.get((self.command, self.path))
                if isinstance(reply, list):
                    reply = reply.pop(0) if len(reply) > 1 else reply[0]
                if reply is None:
                    reply = (404, {"error": {"code": "not_found", "message": "no such resource"}})
                if callable(reply):
                    reply(self)
                    return
                status, payload = reply[0], reply[1]
                headers = reply[2] if len(reply) > 2 else {}
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                ctype = "application/octet-stream" if isinstance(payload, bytes) else \
                    "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self._dir.cleanup()

    def only(self, method: str, path: str) -> Recorded:
        hits = [r for r in self.requests if r.method == method and r.path == path]
        assert len(hits) == 1, f"{method} {path}: {len(hits)} requests, all: " + \
            ", ".join(f"{r.method} {r.path}" for r in self.requests)
        return hits[0]


def truncated_body(total: int, sent: bytes, headers: Optional[Dict[str, str]] = None):
    """A reply announcing `total` bytes, sending `sent`, then closing."""

    def reply(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(total))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(sent)
        h.wfile.flush()
        h.close_connection = True

    return reply
