"""authz's Ed25519 signing keys: the current and previous key, their JWKS, rotation and reload."""

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = structlog.get_logger("alta.authz.keys")

CURRENT_FILE = "current.pem"
PREVIOUS_FILE = "previous.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str
    public_jwk: dict[str, Any]

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> "SigningKey":
        raw = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
        # RFC 7638 thumbprint: the same key always gets the same kid, on every replica.
        thumbprint = hashlib.sha256(
            json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        ).digest()
        kid = _b64url(thumbprint)[:16]
        return cls(private_key, kid, {**members, "kid": kid, "alg": "EdDSA", "use": "sig"})

    @classmethod
    def from_pem(cls, pem: bytes) -> "SigningKey":
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the JWT signing key must be an Ed25519 private key")
        return cls.from_private_key(key)


def _pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class KeyRing:
    current: SigningKey
    previous: SigningKey | None = None
    # When this process first saw `current` (monotonic clock).
    current_seen_at: float = field(default_factory=time.monotonic)

    def jwks(self) -> dict[str, Any]:
        keys = [self.current.public_jwk]
        if self.previous is not None:
            keys.append(self.previous.public_jwk)
        return {"keys": keys}

    def signing_key(self, activation_seconds: float) -> SigningKey:
        """The previous key keeps signing until every verifier could have fetched the new one."""
        fresh = time.monotonic() - self.current_seen_at < activation_seconds
        return self.previous if fresh and self.previous is not None else self.current


def _read_dir(directory: Path) -> tuple[bytes, bytes | None]:
    previous = directory / PREVIOUS_FILE
    return (
        (directory / CURRENT_FILE).read_bytes(),
        previous.read_bytes() if previous.exists() else None,
    )


class KeyStore:
    """The key ring, re-read from JWT_KEYS_DIR by `reload()` (Kubernetes updates a mounted
    Secret in place); without a directory, one generated key for the life of the process."""

    def __init__(self, directory: Path | None) -> None:
        self._directory = directory
        if directory is None:
            self._files: tuple[bytes, bytes | None] | None = None
            self.ring = KeyRing(SigningKey.from_private_key(Ed25519PrivateKey.generate()))
            return
        self._files = _read_dir(directory)
        self.ring = self._ring_from(self._files, previous_ring=None)

    @staticmethod
    def _ring_from(files: tuple[bytes, bytes | None], previous_ring: KeyRing | None) -> KeyRing:
        current_pem, previous_pem = files
        current = SigningKey.from_pem(current_pem)
        previous = SigningKey.from_pem(previous_pem) if previous_pem is not None else None
        if previous_ring is not None and previous_ring.current.kid == current.kid:
            return KeyRing(current, previous, previous_ring.current_seen_at)
        return KeyRing(current, previous)

    def reload(self) -> bool:
        """Re-read the directory; returns whether the keys changed. A broken update is logged
        and ignored: the keys in use keep working until the directory is fixed."""
        if self._directory is None:
            return False
        try:
            files = _read_dir(self._directory)
            if files == self._files:
                return False
            ring = self._ring_from(files, self.ring)
        except (OSError, ValueError) as exc:
            log.error("jwt keys directory unreadable, keeping the keys in use", error=repr(exc))
            return False
        self._files = files
        self.ring = ring
        log.info("jwt keys reloaded", current_kid=ring.current.kid)
        return True


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(temporary, path)


def rotate_keys(directory: Path) -> str:
    """current.pem becomes previous.pem and a new current.pem is generated; returns its kid.

    In an empty directory this creates the first key.
    """
    directory.mkdir(parents=True, exist_ok=True)
    current = directory / CURRENT_FILE
    if current.exists():
        SigningKey.from_pem(current.read_bytes())  # never demote something that is not a key
        _write_atomically(directory / PREVIOUS_FILE, current.read_bytes())
    new_key = Ed25519PrivateKey.generate()
    _write_atomically(current, _pem(new_key))
    return SigningKey.from_private_key(new_key).kid
