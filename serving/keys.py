"""API keys: a name, one or more roles, and only the key's sha256 stored, in a JSON file.

A key is 32 random bytes (urlsafe base64, prefixed `pk_`); it is shown once when made and
never stored, so the file holds nothing that opens the service. Looking a key up hashes it and
compares against every stored hash with `hmac.compare_digest` (constant time per entry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from portrait.errors import PortraitError

ROLES = ("app", "staff", "marketer", "admin")
PREFIX = "pk_"


class KeysError(PortraitError):
    """A key file or key command that cannot be done; the message says what to fix."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and its roles."""

    name: str
    roles: frozenset[str]


def digest(key: str) -> str:
    """The sha256 hex digest a key is stored as."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_keys(path: Path) -> dict[str, dict]:
    """The key file's entries by name ({} when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeysError(f"key file {path} is not readable JSON ({exc}); fix or remove it") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise KeysError(f'key file {path} must hold {{"keys": {{name: ...}}}}')
    return data["keys"]


def _write_keys(path: Path, keys: dict[str, dict]) -> None:
    """Write the key file atomically with mode 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"keys": keys}, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def add_key(path: Path, name: str, *, roles: list[str], at: datetime | None = None) -> str:
    """Make a key for `name` with `roles`, store its hash, and return the key (shown once)."""
    if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
        raise KeysError(f"key name {name[:64]!r} must be 1-64 letters, digits, - or _")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown or not roles:
        raise KeysError(f"role {unknown[0] if unknown else ''!r} unknown; use {', '.join(ROLES)}")
    keys = read_keys(path)
    if name in keys:
        raise KeysError(f"a key named {name!r} exists in {path}; revoke it first or pick a name")
    key = PREFIX + secrets.token_urlsafe(32)
    when = (at or datetime.now(UTC)).isoformat(timespec="seconds")
    keys[name] = {"sha256": digest(key), "roles": sorted(set(roles)), "created": when}
    _write_keys(path, keys)
    return key


def revoke_key(path: Path, name: str) -> None:
    """Remove the key `name`; a running service refuses it from its next request on."""
    keys = read_keys(path)
    if name not in keys:
        raise KeysError(f"no key named {name!r} in {path}; `portrait keys list` shows the names")
    del keys[name]
    _write_keys(path, keys)


def find(keys: dict[str, dict], key: str) -> Principal | None:
    """The principal whose stored hash matches `key`, or None."""
    wanted = digest(key)
    found = None
    for name, entry in keys.items():  # no early exit: every entry is compared
        if hmac.compare_digest(wanted, str(entry.get("sha256", ""))):
            found = Principal(name, frozenset(entry.get("roles", ())))
    return found


class KeyStore:
    """The key file as the service reads it: re-read when it changes, so a revoke takes effect."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, dict] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read the file when its mtime or size changed (a missing file means no keys)."""
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._keys = read_keys(self.path) if stamp else {}
                self._stamp = stamp

    def lookup(self, key: str) -> Principal | None:
        """The principal of `key` (None for an unknown or revoked key)."""
        self.refresh()
        return find(self._keys, key)

    def roles_of(self, name: str) -> frozenset[str] | None:
        """The current roles of the key `name`, None when it was revoked."""
        self.refresh()
        entry = self._keys.get(name)
        return None if entry is None else frozenset(entry.get("roles", ()))
