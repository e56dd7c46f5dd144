"""Where the agent's private key material lives at rest: ``DATA_DIR/keys.json``.

The file is one JSON object ``{"format": 1, "protection": ..., ...}``. Its own ``protection`` decides
how it is opened, whatever the caller would have chosen for a new file:

* ``passphrase``: scrypt (RFC 7914) turns the owner's passphrase into an AES-256-GCM key.
* ``keyring``: a random data key kept in the OS keychain (``keyring``) encrypts the file, so a
  copy of the data directory alone reveals nothing.
* ``plaintext``: development mode only, private JWKs in the clear, flagged in the file itself.

Every encrypted document binds its header (all members but ``ciphertext``) as GCM additional
data, so nobody can swap KDF parameters, keychain entry or format without decryption failing.
This module sees the private material only as an opaque JSON object; ``core.keys`` owns its shape.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.errors
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.jose import b64url

FORMAT = 1
FILE_NAME = "keys.json"
KEYCHAIN_SERVICE = "consent-agent"
BACKUP_TYPE = "consent-agent/key-backup"
SCRYPT_N, SCRYPT_R, SCRYPT_P, SALT_BYTES = 2**15, 8, 1, 16
PROTECTIONS = ("keyring", "passphrase", "plaintext")
PLAINTEXT_WARNING = "development mode: these private keys are NOT encrypted"


class KeyStoreError(Exception):
    """Keys cannot be created, opened or verified; the message is one line meant for the owner."""


def unb64url(text: str) -> bytes:
    """Inverse of :func:`b64url`; raises ``ValueError`` on anything but unpadded base64url."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace: the same header always gives the same AAD bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- sealing: AES-256-GCM with the header as additional data -------------------------------------


def _seal(header: dict[str, Any], key: bytes, plaintext: bytes) -> dict[str, Any]:
    """A fresh 96-bit nonce per write (NIST SP 800-38D §8.2.2); writes are rare, so random is safe."""
    doc = {**header, "enc": "A256GCM", "nonce": b64url(secrets.token_bytes(12))}
    ciphertext = AESGCM(key).encrypt(unb64url(doc["nonce"]), plaintext, canonical_json(doc))
    return {**doc, "ciphertext": b64url(ciphertext)}


def _unseal(doc: dict[str, Any], key: bytes) -> bytes:
    """Raises ``InvalidTag`` for a wrong key or an altered header or body."""
    aad = canonical_json({k: v for k, v in doc.items() if k != "ciphertext"})
    if doc.get("enc") != "A256GCM":
        raise ValueError("unknown encryption")
    return AESGCM(key).decrypt(unb64url(doc["nonce"]), unb64url(doc["ciphertext"]), aad)


def _new_kdf() -> dict[str, Any]:
    return {"name": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": b64url(secrets.token_bytes(SALT_BYTES))}


def _derive(passphrase: str, kdf: Any) -> bytes:
    """scrypt with the parameters stored in the file, bounded so a forged file cannot ask for
    gigabytes of memory nor for parameters weaker than ours."""
    if passphrase == "":
        raise KeyStoreError("the passphrase is empty; give a non-empty one")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise ValueError("unknown key derivation")
    n, r, p = kdf.get("n"), kdf.get("r"), kdf.get("p")
    if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)):
        raise ValueError("bad scrypt parameters")
    if not (2**14 <= n <= 2**20 and n & (n - 1) == 0 and 8 <= r <= 32 and 1 <= p <= 16):
        raise ValueError("scrypt parameters out of range")
    salt = unb64url(kdf["salt"])
    if len(salt) < SALT_BYTES:
        raise ValueError("scrypt salt too short")
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


# --- the file ------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Temp file (mode 0o600 from ``mkstemp``), fsync, rename, fsync the directory: a crash leaves
    either the old file or the new one, never half of one. ``exclusive`` refuses to replace an
    existing file (``os.link`` fails if the name exists), so two first starts cannot clobber."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyStoreError(f"{path} already exists; refusing to overwrite it") from None
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class KeyFile:
    """One ``keys.json`` opened or created with a given protection; ``save`` rewrites it whole."""

    def __init__(self, path: Path, protection: str, key: bytes | None, header: dict[str, Any]) -> None:
        self.path = path
        self.protection = protection
        self._key = key
        self._header = {"format": FORMAT, "protection": protection, **header}

    def save(self, material: dict[str, Any], *, exclusive: bool = False) -> None:
        if self._key is None:
            doc = {**self._header, "material": material}
        else:
            doc = _seal(self._header, self._key, canonical_json(material))
        write_atomic(self.path, json.dumps(doc, indent=2).encode("utf-8") + b"\n", exclusive=exclusive)


def keychain_username(data_dir: Path) -> str:
    """One keychain entry per data directory, named without revealing the path."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode("utf-8")).hexdigest()
    return "data-key:" + digest[:16]


def new_passphrase_file(path: Path, passphrase: str) -> KeyFile:
    kdf = _new_kdf()
    return KeyFile(path, "passphrase", _derive(passphrase, kdf), {"kdf": kdf})


def new_keychain_file(path: Path) -> KeyFile:
    """Reuses this directory's data key if the keychain already has one (overwriting it could orphan
    a file a concurrent start just wrote), else stores a fresh one and reads it back: a backend that
    silently drops secrets must fail now, not on the next start when the keys would be lost."""
    username = keychain_username(path.parent)
    try:
        stored = keyring.get_password(KEYCHAIN_SERVICE, username)
        if stored is None:
            keyring.set_password(KEYCHAIN_SERVICE, username, b64url(secrets.token_bytes(32)))
            stored = keyring.get_password(KEYCHAIN_SERVICE, username)
    except keyring.errors.KeyringError as exc:
        raise KeyStoreError(f"the OS keychain refused to store the data key: {exc}") from None
    try:
        data_key = unb64url(stored or "")
    except ValueError:
        data_key = b""
    if len(data_key) != 32:
        raise KeyStoreError("the OS keychain did not keep the data key; use --passphrase-file instead")
    entry = {"service": KEYCHAIN_SERVICE, "username": username}
    return KeyFile(path, "keyring", data_key, {"keychain": entry})


def new_plaintext_file(path: Path) -> KeyFile:
    return KeyFile(path, "plaintext", None, {"warning": PLAINTEXT_WARNING})


def load_file(path: Path, *, passphrase: str | None, plaintext_dev: bool) -> tuple[KeyFile, dict[str, Any]]:
    """Opens ``path`` the way its own header says; every failure is a one-line ``KeyStoreError``."""
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("protection") not in PROTECTIONS:
        raise KeyStoreError(f"{path} is not a consent-agent key file of format {FORMAT}")
    protection = doc["protection"]
    try:
        if protection == "plaintext":
            if not plaintext_dev:
                raise KeyStoreError(f"{path} holds unencrypted development keys; needs plaintext_dev")
            key, header = None, {"warning": PLAINTEXT_WARNING}
            material = doc["material"]
        elif protection == "passphrase":
            if passphrase is None:
                raise KeyStoreError(f"{path} is protected by a passphrase: give it with --passphrase-file F "
                                    "or the environment variable CONSENT_AGENT_PASSPHRASE")
            key, header = _derive(passphrase, doc.get("kdf")), {"kdf": doc["kdf"]}
            material = json.loads(_unseal(doc, key))
        else:
            key, header = _keychain_key(path, doc.get("keychain")), {"keychain": doc["keychain"]}
            material = json.loads(_unseal(doc, key))
    except InvalidTag:
        if protection == "passphrase":
            raise KeyStoreError(f"wrong passphrase for {path} (or the file was altered)") from None
        raise KeyStoreError(f"the keychain data key does not open {path} (or the file was altered)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyStoreError(f"{path} is damaged: {exc!r}") from None
    if not isinstance(material, dict):
        raise KeyStoreError(f"{path} is damaged: no key material")
    return KeyFile(path, protection, key, header), material


def _keychain_key(path: Path, entry: Any) -> bytes:
    if not isinstance(entry, dict) or entry.get("service") != KEYCHAIN_SERVICE:
        raise ValueError("bad keychain entry")
    username = entry.get("username")
    try:
        stored = keyring.get_password(KEYCHAIN_SERVICE, str(username))
    except keyring.errors.KeyringError as exc:
        raise KeyStoreError(f"{path} needs the OS keychain, which failed: {exc}") from None
    if stored is None:
        raise KeyStoreError(f"{path} needs the OS keychain entry {KEYCHAIN_SERVICE}/{username}, which is "
                            "missing; restore from a backup")
    return unb64url(stored)


def os_keychain_usable() -> bool:
    """True when ``keyring`` resolves to a backend that really stores secrets. The fail and null
    backends, a chainer with nothing behind it, and keyrings.alt (plaintext files or interactive
    prompts) do not count."""
    from keyring.backends import chainer, fail, null

    def real(backend: keyring.backend.KeyringBackend) -> bool:
        if isinstance(backend, chainer.ChainerBackend):
            return any(real(b) for b in backend.backends)
        return not (isinstance(backend, fail.Keyring | null.Keyring)
                    or type(backend).__module__.startswith("keyrings.alt"))

    try:
        return real(keyring.get_keyring())
    except Exception:  # a broken keyring configuration means: not usable
        return False


# --- backups -------------------------------------------------------------------------------------


def seal_backup(material: dict[str, Any], passphrase: str, agent_id: str) -> bytes:
    """A self-describing JSON document; ``agent_id`` is in the clear (and authenticated) so the
    owner can tell which identity a backup holds without its passphrase."""
    kdf = _new_kdf()
    header = {"format": FORMAT, "type": BACKUP_TYPE, "agent_id": agent_id, "kdf": kdf}
    doc = _seal(header, _derive(passphrase, kdf), canonical_json(material))
    return json.dumps(doc, indent=2).encode("utf-8") + b"\n"


def open_backup(blob: bytes, passphrase: str) -> tuple[str, dict[str, Any]]:
    """Returns ``(agent_id, material)``; a wrong passphrase or altered blob is a ``KeyStoreError``."""
    try:
        doc = json.loads(blob)
        if not isinstance(doc, dict) or doc.get("type") != BACKUP_TYPE or doc.get("format") != FORMAT:
            raise KeyStoreError("this is not a consent-agent key backup")
        material = json.loads(_unseal(doc, _derive(passphrase, doc.get("kdf"))))
    except InvalidTag:
        raise KeyStoreError("wrong passphrase for this backup (or the backup was altered)") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyStoreError(f"the backup is damaged: {exc!r}") from None
    if not isinstance(material, dict) or not isinstance(doc.get("agent_id"), str):
        raise KeyStoreError("the backup is damaged: no key material")
    return doc["agent_id"], material
