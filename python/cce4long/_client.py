"""The HTTPS client every cce4long call goes through.

TLS is always verified against the plane's own CA (the PEM text from the
configuration), never against the system store; redirects are refused (a
redirect would carry the bearer token to another address); the token is kept
in a _Secret that never prints.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Iterable, Optional

# A JSON answer larger than this is refused unread (the plane's own bodies are
# far smaller; a runaway answer must not exhaust a notebook's memory).
MAX_JSON_BYTES = 64 << 20
# Streamed downloads are read in pieces of this size.
PIECE_BYTES = 256 << 10
DEFAULT_TIMEOUT_SECONDS = 60.0


class PlaneError(Exception):
    """Every failure reported by (or on the way to) the Privacy Plane.

    status: the HTTP status (0 when no HTTP answer arrived: connection, TLS or
    configuration failure); code: the plane's error code (`invalid_argument`,
    `permission_denied`, `not_found`, ...; `http_<status>` when the answer was
    not the plane's JSON error, `transport` or `not_configured` when status is
    0); message: the plane's message, which names the field that was wrong.
    """

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        where = f"HTTP {self.status} " if self.status else ""
        return f"{where}{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"PlaneError({self.status!r}, {self.code!r}, {self.message!r})"


class _Secret:
    """A string that never shows itself in repr/str/format."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "<redacted>"

    def __reduce__(self):  # never pickled into a notebook checkpoint
        raise TypeError("a cce4long secret cannot be pickled")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        # Following would resend Authorization to wherever the plane points.
        raise PlaneError(code, f"http_{code}",
                         f"{req.get_method()} {urllib.parse.urlsplit(req.full_url).path}: "
                         f"the plane answered with a redirect to {newurl!r}; not followed")


def _error_from_body(status: int, body: bytes, what: str) -> PlaneError:
    try:
        err = json.loads(body.decode("utf-8"))["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        text = body[:200].decode("utf-8", "replace").strip()
        code, message = f"http_{status}", text or "(no error message)"
    return PlaneError(status, code, f"{what}: {message}")


class Client:
    """One plane: base URL, bearer token and the CA to verify it against."""

    def __init__(self, url: str, token: str, ca_pem: str, source: str = "explicit",
                 session: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise PlaneError(0, "not_configured",
                             f"plane_url: expected https://HOST[:PORT], got {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise PlaneError(0, "not_configured",
                             f"plane_url: expected no path, query or fragment, got {url!r}")
        if not token or any(c in token for c in "\r\n\t "):
            raise PlaneError(0, "not_configured",
                             "token: empty or contains whitespace (the token is not shown)")
        if "-----BEGIN CERTIFICATE-----" not in (ca_pem or ""):
            raise PlaneError(0, "not_configured",
                             f"ca ({source}): no PEM certificate (-----BEGIN CERTIFICATE-----)")
        self.url = f"https://{parts.netloc}"
        self.source = source
        self.session = session
        self.timeout = timeout
        self._token = _Secret(token)
        try:
            ctx = ssl.create_default_context(cadata=ca_pem)
        except ssl.SSLError as e:
            raise PlaneError(0, "not_configured", f"ca ({source}): not a usable PEM CA: {e}")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ctx), _NoRedirect())

    def __repr__(self) -> str:
        extra = f", session={self.session!r}" if self.session else ""
        return f"cce4long.Client(url={self.url!r}, source={self.source!r}{extra})"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a cce4long.Client holds a token and cannot be pickled")

    # --- requests -------------------------------------------------------

    def _open(self, method: str, path: str, body: Optional[bytes], content_type: Optional[str],
              accept: str):
        what = f"{method} {path.split('?', 1)[0]}"
        req = urllib.request.Request(self.url + path, data=body, method=method)
        req.add_header("Authorization", "Bearer " + self._token.reveal())
        req.add_header("Accept", accept)
        req.add_header("User-Agent", "cce4long-python")
        if body is not None:
            req.add_header("Content-Type", content_type or "application/json")
        try:
            return self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            with e:
                raise _error_from_body(e.code, e.read(MAX_JSON_BYTES), what) from None
        except PlaneError:
            raise
        except ssl.SSLError as e:
            raise PlaneError(0, "transport", f"{what}: TLS with {self.url} failed: {e}") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, ssl.SSLError):
                raise PlaneError(0, "transport", f"{what}: TLS with {self.url} failed (is the CA "
                                 f"the plane's?): {e.reason}") from None
            raise PlaneError(0, "transport",
                             f"{what}: cannot reach {self.url}: {e.reason}") from None
        except (OSError, http.client.HTTPException) as e:
            raise PlaneError(0, "transport", f"{what}: {self.url}: {e!r}") from None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Sends one JSON request and returns the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        what = f"{method} {path.split('?', 1)[0]}"
        with self._open(method, path, data, "application/json", "application/json") as r:
            raw = r.read(MAX_JSON_BYTES + 1)
        if len(raw) > MAX_JSON_BYTES:
            raise PlaneError(r.status, "payload_too_large",
                             f"{what}: answer larger than {MAX_JSON_BYTES} bytes")
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise PlaneError(r.status, "invalid_response", f"{what}: answer is not JSON: {e}")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def stream(self, path: str, sink: Callable[[bytes], None]) -> dict:
        """GETs path and hands the body to sink piece by piece.

        Returns the answer's headers (lower-case names). A body shorter than
        its Content-Length is the caller's to detect: http.client returns a
        short read silently, and the plane cuts a stream short on a failed
        check (see Job.download)."""
        with self._open("GET", path, None, None, "application/octet-stream") as r:
            headers = {k.lower(): v for k, v in r.headers.items()}
            while True:
                try:
                    piece = r.read(PIECE_BYTES)
                except (OSError, http.client.HTTPException) as e:
                    raise PlaneError(0, "transport", f"GET {path}: body cut short: {e}") from None
                if not piece:
                    break
                sink(piece)
        return headers


def quote_segment(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def quote_path(parts: Iterable[str]) -> str:
    return "/".join(quote_segment(p) for p in parts)
