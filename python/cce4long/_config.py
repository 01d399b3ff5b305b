"""Where the SDK finds its plane, first found wins:

1. cce4long.connect(url=, token=, ca=) (a missing argument is taken from below);
2. /etc/cce4long/session.json, written into every Explore session:
   {"plane_url", "ca_pem", "token", "session"};
3. the environment: CCE_PLANE_URL and CCE_TOKEN, with the CA from CCE_CA (a PEM
   file, or the PEM text itself) or CCE_CA_FILE (as for `cce`);
4. the `cce` CLI's own config file ($XDG_CONFIG_HOME/cce/config.yaml, else
   ~/.config/cce/config.yaml; keys plane_url, token, ca_file), with the
   environment variables above overriding single fields as they do for `cce`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Optional

from ._client import Client, PlaneError, _Secret

SESSION_FILE = "/etc/cce4long/session.json"
# Config files are tiny; anything bigger is not ours.
MAX_CONFIG_BYTES = 1 << 20


@dataclass
class Settings:
    url: str = ""
    token: _Secret = field(default_factory=lambda: _Secret(""))
    ca_pem: str = ""
    source: str = ""
    session: Optional[str] = None

    def client(self, timeout: float) -> Client:
        return Client(self.url, self.token.reveal(), self.ca_pem, source=self.source,
                      session=self.session, timeout=timeout)


def _read_text(path: str, what: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise PlaneError(0, "not_configured", f"{what} {path}: {e.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise PlaneError(0, "not_configured",
                         f"{what} {path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlaneError(0, "not_configured",
                         f"{what} {path}: not UTF-8 (byte {e.start})") from None


def ca_text(ca: str, what: str) -> str:
    """ca is PEM text, or the path of a PEM file."""
    if "-----BEGIN" in ca:
        return ca
    return _read_text(os.path.expanduser(ca), what)


def load_session_file(path: str) -> Settings:
    text = _read_text(path, "session file")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise PlaneError(0, "not_configured", f"{path}: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise PlaneError(0, "not_configured", f"{path}: expected a JSON object")
    values = {}
    for key in ("plane_url", "ca_pem", "token", "session"):
        v = doc.get(key)
        if not isinstance(v, str) or not v:
            raise PlaneError(0, "not_configured", f"{path}: {key}: expected a non-empty string")
        values[key] = v
    return Settings(url=values["plane_url"], token=_Secret(values["token"]),
                    ca_pem=values["ca_pem"], source=path, session=values["session"])


def cli_config_path() -> str:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "cce", "config.yaml")
    return os.path.join(os.environ.get("HOME") or ".", ".config", "cce", "config.yaml")


def _yaml_scalar(raw: str, where: str) -> str:
    raw = raw.strip()
    if raw.startswith('"'):
        try:
            return json.loads(raw)  # yaml-cpp's double-quoted escapes are JSON's for these keys
        except ValueError:
            raise PlaneError(0, "not_configured", f"{where}: unreadable quoted value") from None
    if raw.startswith("'"):
        if len(raw) < 2 or not raw.endswith("'"):
            raise PlaneError(0, "not_configured", f"{where}: unterminated quoted value")
        return raw[1:-1].replace("''", "'")
    return raw


def parse_cli_config(text: str, path: str) -> dict:
    """The top-level scalars of the CLI's config.yaml (plane_url, token,
    ca_file). The nested `planes:` map (pinned audit heads) is the CLI's
    business and is skipped; the CLI validates the file when it writes it."""
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or line[0] in " \t-":
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise PlaneError(0, "not_configured", f"{path}:{n}: expected 'key: value'")
        key = key.strip()
        if key in ("plane_url", "token", "ca_file"):
            out[key] = _yaml_scalar(value, f"{path}:{n}: {key}")
    return out


def discover() -> Settings:
    """The configuration from the session file, the environment or the CLI's
    config file (module docstring); raises PlaneError(0, "not_configured")."""
    if os.path.exists(SESSION_FILE):
        return load_session_file(SESSION_FILE)
    path = cli_config_path()
    file_values = {}
    if os.path.exists(path):
        file_values = parse_cli_config(_read_text(path, "cce config"), path)
    env = os.environ
    url = env.get("CCE_PLANE_URL") or file_values.get("plane_url", "")
    token = env.get("CCE_TOKEN") or file_values.get("token", "")
    from_env = bool(env.get("CCE_PLANE_URL") and env.get("CCE_TOKEN"))
    source = "environment (CCE_PLANE_URL, CCE_TOKEN)" if from_env else path
    if env.get("CCE_CA"):
        ca_source, ca_ref = "CCE_CA", env["CCE_CA"]
    elif env.get("CCE_CA_FILE"):
        ca_source, ca_ref = "CCE_CA_FILE", env["CCE_CA_FILE"]
    else:
        ca_source, ca_ref = f"{path}: ca_file", file_values.get("ca_file", "")
    missing = [name for name, v in (("plane URL", url), ("token", token), ("CA", ca_ref)) if not v]
    if missing:
        raise PlaneError(
            0, "not_configured",
            "no plane configured (missing " + ", ".join(missing) + "): looked at "
            f"{SESSION_FILE}, CCE_PLANE_URL/CCE_TOKEN/CCE_CA, and {path}; call "
            "cce4long.connect(url=, token=, ca=) or run `cce login`")
    return Settings(url=url, token=_Secret(token), ca_pem=ca_text(ca_ref, ca_source),
                    source=source)


def explicit(url: Optional[str], token: Optional[str], ca: Optional[str]) -> Settings:
    """connect()'s arguments; any one left out comes from discover()."""
    if url and token and ca:
        return Settings(url=url, token=_Secret(token), ca_pem=ca_text(ca, "ca"),
                        source="cce4long.connect()")
    base = discover()
    return Settings(url=url or base.url,
                    token=_Secret(token) if token else base.token,
                    ca_pem=ca_text(ca, "ca") if ca else base.ca_pem,
                    source="cce4long.connect() + " + base.source,
                    session=base.session)
