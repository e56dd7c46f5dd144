"""The agent's keys: an identity key that names it, rotating token-signing keys, a master secret.

* The identity key (EC P-256) is the agent: ``agent_id`` is the RFC 7638 thumbprint of its public
  JWK, so anyone holding only the ``agent_id`` can check what the agent signs (the relay, the SDK).
* Token-signing keys (ES256, RFC 7518 §3.4) rotate; the JWKS that publishes them is itself a JWS
  signed by the identity key, so a relay in the middle cannot slip in a key of its own.
* ``secret(label)`` gives independent 32-byte keys (RFC 5869 HKDF) from one stored master secret.

Storage and its protection live in :mod:`core.keystore`; this module owns what is stored.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core import keystore
from core.clock import Clock
from core.jose import PRIVATE_JWK_MEMBERS, b64url, jwk_thumbprint, sign_es256
from core.keystore import KeyStoreError, os_keychain_usable, unb64url

__all__ = ["KeyRing", "KeyStoreError", "SigningKey", "jwk_thumbprint", "open_keyring", "os_keychain_usable",
           "restore_into", "verify_identity_jws", "verify_signed_jwks"]

JWKS_TYP = "jwk-set+jwt"
MAX_JWS_BYTES = 64 * 1024
_CLOCK_SKEW = 60


def _public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    nums = key.public_numbers()
    return {"crv": "P-256", "kty": "EC", "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big"))}


def _coordinate(jwk: Mapping[str, Any], name: str) -> int:
    raw = unb64url(jwk[name])
    if len(raw) != 32:  # RFC 7518 §6.2.1.2: full-length octets for P-256
        raise ValueError(f"JWK member {name!r} is not 32 octets")
    return int.from_bytes(raw, "big")


def _ec_public_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey:
    """P-256 only; ``public_key()`` rejects points that are not on the curve."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 JWK")
    nums = ec.EllipticCurvePublicNumbers(_coordinate(jwk, "x"), _coordinate(jwk, "y"), ec.SECP256R1())
    return nums.public_key()


def _ec_private_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    """Rebuilds from ``d`` and checks the stored public point matches it."""
    key = ec.derive_private_key(_coordinate(jwk, "d"), ec.SECP256R1())
    if _public_jwk(key.public_key()) != _public_jwk(_ec_public_key(jwk)):
        raise ValueError("private JWK does not match its public part")
    return key


def _private_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    d = key.private_numbers().private_value.to_bytes(32, "big")
    return {**_public_jwk(key.public_key()), "d": b64url(d)}


@dataclass(frozen=True)
class SigningKey:
    """A token-signing key; ``kid`` is the RFC 7638 thumbprint of its public JWK."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    created_at: int

    @classmethod
    def generate(cls, now: int) -> SigningKey:
        key = ec.generate_private_key(ec.SECP256R1())
        return cls(jwk_thumbprint(_public_jwk(key.public_key())), key, now)


@dataclass(frozen=True)
class _Published:
    key: SigningKey
    retired_at: int | None  # None for the current key


class KeyRing:
    """The loaded keys. Reads are lock-free (the published tuple is swapped whole); rotation
    writes the file first and swaps in memory only once the file holds the new state."""

    def __init__(self, *, identity_key: ec.EllipticCurvePrivateKey, published: tuple[_Published, ...],
                 master_secret: bytes, store: keystore.KeyFile) -> None:
        currents = [p for p in published if p.retired_at is None]
        if len(currents) != 1 or len(master_secret) != 32:
            raise KeyStoreError(f"{store.path} is damaged: needs one current signing key and a master secret")
        self.identity_key = identity_key
        self.agent_id = jwk_thumbprint(_public_jwk(identity_key.public_key()))
        self.protection = store.protection
        self._published = published
        self._master = master_secret
        self._derived: dict[str, bytes] = {}
        self._store = store
        self._lock = threading.Lock()

    def current(self) -> SigningKey:
        return next(p.key for p in self._published if p.retired_at is None)

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The current key or a retired one still published, so tokens signed just before a
        rotation keep verifying until they expire."""
        return next((p.key.private_key.public_key() for p in self._published if p.key.kid == kid), None)

    def public_jwks(self) -> dict[str, Any]:
        """RFC 7517 §5 JWK Set, current key first; public members only."""
        return {"keys": [{**_public_jwk(p.key.private_key.public_key()), "kid": p.key.kid, "alg": "ES256",
                          "use": "sig"} for p in self._published]}

    def identity_public_jwk(self) -> dict[str, str]:
        return _public_jwk(self.identity_key.public_key())

    def sign_jwt(self, claims: dict[str, Any], *, typ: str,
                 extra_headers: dict[str, Any] | None = None) -> str:
        """ES256 with the current key; ``typ`` is explicit (RFC 8725 §3.11) so tokens of one kind
        cannot be passed off as another."""
        extra = dict(extra_headers or {})
        if {"alg", "typ", "kid"} & extra.keys():
            raise ValueError("extra_headers may not set alg, typ or kid")
        key = self.current()
        headers = {**extra, "typ": typ, "kid": key.kid}
        return sign_es256(claims, key.private_key, headers)

    def sign_with_identity(self, payload: dict[str, Any], *, typ: str) -> str:
        """A JWS whose ``jwk`` header (RFC 7515 §4.1.3) carries the identity public key, checkable
        with nothing but the ``agent_id`` (see :func:`verify_identity_jws`)."""
        return jwt.encode(payload, self.identity_key, algorithm="ES256",
                          headers={"typ": typ, "jwk": self.identity_public_jwk()})

    def signed_jwks(self, now: int) -> str:
        return self.sign_with_identity({"iss": self.agent_id, "sub": self.agent_id, "iat": now,
                                        "keys": self.public_jwks()["keys"]}, typ=JWKS_TYP)

    def secret(self, label: str) -> bytes:
        """HKDF-SHA256 (RFC 5869) with the label as ``info``: one key per purpose (PCT encryption,
        DPoP nonces, cookies), none revealing another or the master."""
        if not label:
            raise ValueError("secret label must not be empty")
        derived = self._derived.get(label)
        if derived is None:
            info = b"consent-agent/v1/" + label.encode("utf-8")
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._master)
            self._derived[label] = derived
        return derived

    def rotate_if_due(self, now: int, *, every_days: int = 30, keep_seconds: int = 7 * 86400) -> bool:
        """Retires the current key once it is ``every_days`` old and makes a new one; drops retired
        keys ``keep_seconds`` after retirement (longer than any token they signed lives). Returns
        True when the published set changed, i.e. the JWKS must be republished."""
        if every_days < 1 or keep_seconds < 0:
            raise ValueError("every_days must be >= 1 and keep_seconds >= 0")
        with self._lock:
            entries = list(self._published)
            rotated = now - self.current().created_at >= every_days * 86400
            if rotated:
                entries = [_Published(p.key, now if p.retired_at is None else p.retired_at) for p in entries]
                entries.insert(0, _Published(SigningKey.generate(now), None))
            kept = tuple(p for p in entries if p.retired_at is None or now < p.retired_at + keep_seconds)
            if not rotated and len(kept) == len(entries):
                return False
            self._store.save(_material(self.identity_key, kept, self._master))
            self._published = kept
            return True

    def export_backup(self, passphrase: str) -> bytes:
        """scrypt + AES-256-GCM JSON holding everything needed to be this agent on another device."""
        return keystore.seal_backup(self._material(), passphrase, self.agent_id)

    @classmethod
    def restore_backup(cls, blob: bytes, passphrase: str) -> dict[str, Any]:
        """Decrypts and checks a backup; the material must really be the identity it claims."""
        agent_id, material = keystore.open_backup(blob, passphrase)
        identity, _, _ = _parse(material, "the backup")
        if jwk_thumbprint(_public_jwk(identity.public_key())) != agent_id:
            raise KeyStoreError("the backup is damaged: its keys are not those of the agent it names")
        return material

    def _material(self) -> dict[str, Any]:
        return _material(self.identity_key, self._published, self._master)


def _material(identity: ec.EllipticCurvePrivateKey, published: tuple[_Published, ...],
              master: bytes) -> dict[str, Any]:
    return {"identity": _private_jwk(identity), "master_secret": b64url(master),
            "signing": [{"kid": p.key.kid, "jwk": _private_jwk(p.key.private_key),
                         "created_at": p.key.created_at, "retired_at": p.retired_at} for p in published]}


def _parse(material: Mapping[str, Any], where: object) -> tuple[ec.EllipticCurvePrivateKey,
                                                                   tuple[_Published, ...], bytes]:
    try:
        identity = _ec_private_key(material["identity"])
        published = []
        for entry in material["signing"]:
            key = _ec_private_key(entry["jwk"])
            created, retired = entry["created_at"], entry["retired_at"]
            if entry["kid"] != jwk_thumbprint(_public_jwk(key.public_key())) or not isinstance(created, int) \
                    or not (retired is None or isinstance(retired, int)):
                raise ValueError("bad signing key entry")
            published.append(_Published(SigningKey(entry["kid"], key, created), retired))
        return identity, tuple(published), unb64url(material["master_secret"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyStoreError(f"{where} is damaged: {exc!r}") from None


def _new_file(path: Path, passphrase: str | None, use_os_keychain: bool,
              plaintext_dev: bool) -> keystore.KeyFile:
    """Strongest protection available first: passphrase, then OS keychain, then (only if the owner
    allowed it) plaintext."""
    if passphrase is not None:
        return keystore.new_passphrase_file(path, passphrase)
    if use_os_keychain and os_keychain_usable():
        return keystore.new_keychain_file(path)
    if plaintext_dev:
        return keystore.new_plaintext_file(path)
    raise KeyStoreError("no way to protect the private keys: give a passphrase with --passphrase-file F, "
                        "or the environment variable CONSENT_AGENT_PASSPHRASE, "
                        "or set up an OS keychain (keyring)")


def _create(store: keystore.KeyFile, identity: ec.EllipticCurvePrivateKey, published: tuple[_Published, ...],
            master: bytes) -> KeyRing:
    """Writes a new file, refusing to replace one that appeared meanwhile (a concurrent start)."""
    ring = KeyRing(identity_key=identity, published=published, master_secret=master, store=store)
    store.save(ring._material(), exclusive=True)
    return ring


def open_keyring(data_dir: Path, *, clock: Clock, passphrase: str | None = None, use_os_keychain: bool = True,
                 plaintext_dev: bool = False) -> KeyRing:
    """Loads ``data_dir/keys.json``; the first start creates an identity key, one signing key and
    a master secret. An existing file keeps its own protection."""
    path = data_dir / keystore.FILE_NAME
    if path.exists():
        store, material = keystore.load_file(path, passphrase=passphrase, plaintext_dev=plaintext_dev)
        identity, published, master = _parse(material, path)
        return KeyRing(identity_key=identity, published=published, master_secret=master, store=store)
    first = (_Published(SigningKey.generate(int(clock())), None),)
    store = _new_file(path, passphrase, use_os_keychain, plaintext_dev)
    return _create(store, ec.generate_private_key(ec.SECP256R1()), first, secrets.token_bytes(32))


def restore_into(data_dir: Path, blob: bytes, backup_passphrase: str, *, clock: Clock,
                 passphrase: str | None = None, use_os_keychain: bool = True,
                 plaintext_dev: bool = False) -> KeyRing:
    """Becomes the backed-up agent in a directory holding no keys yet, protected like a first
    start would be. ``clock`` is accepted for symmetry; restored keys keep their timestamps."""
    del clock
    path = data_dir / keystore.FILE_NAME
    if path.exists():
        raise KeyStoreError(f"{path} already holds keys; restore into an empty data directory")
    material = KeyRing.restore_backup(blob, backup_passphrase)
    identity, published, master = _parse(material, "the backup")
    return _create(_new_file(path, passphrase, use_os_keychain, plaintext_dev), identity, published, master)


def verify_identity_jws(token: str, agent_id: str, *, typ: str) -> dict[str, Any]:
    """Checks a JWS made by :meth:`KeyRing.sign_with_identity`: the ``jwk`` header must hash
    (RFC 7638) to ``agent_id`` and must verify the ES256 signature. Returns the payload."""
    if not isinstance(token, str) or len(token) > MAX_JWS_BYTES:
        raise KeyStoreError("the signed document is missing or too large")
    try:
        header = jwt.get_unverified_header(token)
        jwk = header.get("jwk")
        if header.get("alg") != "ES256" or not isinstance(jwk, dict) or PRIVATE_JWK_MEMBERS & jwk.keys():
            raise KeyStoreError("the signed document is not an ES256 JWS with a public jwk header")
        if str(header.get("typ", "")).lower().removeprefix("application/") != typ:
            raise KeyStoreError(f"the signed document is not of type {typ}")
        if not hmac.compare_digest(jwk_thumbprint(jwk), agent_id):
            raise KeyStoreError("the signed document is signed by a key other than the agent's identity key")
        decoded = jwt.PyJWS().decode_complete(token, _ec_public_key(jwk), algorithms=["ES256"])
        payload = json.loads(decoded["payload"])
    except jwt.InvalidSignatureError:
        raise KeyStoreError("the signed document's signature does not verify") from None
    except (jwt.InvalidTokenError, KeyError, ValueError, TypeError) as exc:
        raise KeyStoreError(f"the signed document is malformed: {exc}") from None
    if not isinstance(payload, dict):
        raise KeyStoreError("the signed document's payload is not a JSON object")
    return payload


def verify_signed_jwks(token: str, agent_id: str, *, now: int | None = None,
                       max_age: int | None = None) -> dict[str, Any]:
    """Verifies a JWKS from :meth:`KeyRing.signed_jwks` with nothing but the ``agent_id`` and
    returns ``{"keys": [...]}``. With ``now``, an ``iat`` in the future is refused; with both
    ``now`` and ``max_age``, so is one older than ``max_age`` (a replayed, stale key set)."""
    payload = verify_identity_jws(token, agent_id, typ=JWKS_TYP)
    if payload.get("iss") != agent_id or payload.get("sub") != agent_id:
        raise KeyStoreError("the signed JWKS names another agent as its issuer")
    iat, keys = payload.get("iat"), payload.get("keys")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise KeyStoreError("the signed JWKS has no integer iat")
    if now is not None and iat > now + _CLOCK_SKEW:
        raise KeyStoreError("the signed JWKS is dated in the future")
    if now is not None and max_age is not None and iat < now - max_age:
        raise KeyStoreError("the signed JWKS is too old")
    if not isinstance(keys, list) or not all(isinstance(k, dict) and "kty" in k for k in keys):
        raise KeyStoreError("the signed JWKS has no list of keys")
    if any(PRIVATE_JWK_MEMBERS & k.keys() for k in keys):
        raise KeyStoreError("the signed JWKS carries private key members")
    return {"keys": keys}
