"""Ed25519 signatures on watchlist updates: HQ signs the exact payload bytes, the car verifies them.

The envelope is JSON: {"format": "picar-signed/1", "key_id": ..., "payload": base64, "signature":
base64}. The payload is the update JSON (optionally gzip-compressed) byte for byte, so nothing is
re-serialised between signing and verifying. Keys are PEM files: PKCS#8 private key (mode 0600)
and SubjectPublicKeyInfo public key. The crypto is the `cryptography` package's, never our own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from picar.watchlist import update

ENVELOPE_FORMAT = "picar-signed/1"


class SignatureError(ValueError):
    """An envelope or key that cannot be trusted; the message says what is wrong."""


@dataclass(frozen=True)
class Opened:
    """The verified (or, when allowed, unsigned) payload of an update."""

    payload: bytes
    signed: bool
    key_id: str | None


def key_id(public_key: Ed25519PublicKey) -> str:
    """Short fingerprint of a public key: first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(base: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Write BASE.key (private, 0600, created exclusively) and BASE.pub; returns both paths."""
    key_path, pub_path = Path(f"{base}.key"), Path(f"{base}.pub")
    if not overwrite:
        for p in (key_path, pub_path):
            if p.exists():
                raise FileExistsError(f"{p} exists; refusing to overwrite a key")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(key_path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(key_path, 0o600)
    pub_path.write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_path, pub_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key; SignatureError if it is not one."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 private key ({type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key; SignatureError if it is not one."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except ValueError as exc:
        raise SignatureError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


def sign(payload: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The signed envelope (JSON bytes) for `payload`."""
    envelope = {
        "format": ENVELOPE_FORMAT,
        "key_id": key_id(private_key.public_key()),
        "payload": base64.b64encode(payload).decode("ascii"),
        "signature": base64.b64encode(private_key.sign(payload)).decode("ascii"),
    }
    return json.dumps(envelope).encode()


def _envelope(data: bytes) -> dict[str, Any] | None:
    """The envelope object if `data` is one (a JSON object with a payload field), else None."""
    if data.lstrip()[:1] != b"{":
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply for the reader
        return None
    return obj if isinstance(obj, dict) and "payload" in obj else None


def is_envelope(data: bytes) -> bool:
    """True if `data` looks like a signed envelope (a JSON object with a payload field)."""
    return _envelope(data) is not None


def open_envelope(data: bytes, public_key: Ed25519PublicKey | None, require_signature: bool) -> Opened:
    """Verify an envelope and return its payload bytes, before anything in them is used.

    Data that is not an envelope is accepted as an unsigned payload only when signatures are not
    required. Raises SignatureError naming what is wrong, or UpdateError for data too large to be an
    update (checked before any of it is parsed).
    """
    limit = update.max_envelope_bytes()
    if len(data) > limit:
        raise update.UpdateError(f"update of {len(data)} bytes; at most {limit} bytes are accepted")
    env = _envelope(data)
    if env is None:
        if require_signature:
            raise SignatureError("unsigned update: a signed envelope is required")
        return Opened(data, False, None)
    if env.get("format") != ENVELOPE_FORMAT:
        raise SignatureError(f"envelope format {env.get('format')!r}, expected {ENVELOPE_FORMAT!r}")
    try:
        payload = base64.b64decode(env["payload"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise SignatureError("envelope 'payload' is not valid base64") from None
    if len(payload) > update.MAX_UPDATE_BYTES:
        raise update.UpdateError(f"payload larger than {update.MAX_UPDATE_BYTES} bytes")
    sig_text = env.get("signature")
    if sig_text is None:
        if require_signature:
            raise SignatureError("unsigned update: envelope has no 'signature'")
        return Opened(payload, False, env.get("key_id"))
    if public_key is None:
        if require_signature:
            raise SignatureError("no public key configured to verify the signature")
        return Opened(payload, False, env.get("key_id"))
    try:
        signature = base64.b64decode(sig_text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise SignatureError("envelope 'signature' is not valid base64") from None
    expected_id = key_id(public_key)
    given_id = env.get("key_id")
    if given_id is not None and given_id != expected_id:
        raise SignatureError(f"signed with key {given_id!r}, this car trusts key {expected_id!r}")
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        raise SignatureError("bad signature: payload or signature altered, or wrong key") from None
    return Opened(payload, True, expected_id)
