"""The key ring: identity, signing, the signed JWKS, rotation, derived secrets and backups."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from core.clock import FakeClock
from core.keys import (
    KeyRing,
    KeyStoreError,
    jwk_thumbprint,
    open_keyring,
    restore_into,
    verify_identity_jws,
    verify_signed_jwks,
)

DAY = 86_400
PASS = "correct horse battery staple"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict[str, object]) -> str:
    return b64(json.dumps(obj).encode())


def unsegment(part: str) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ring(tmp_path: Path, clock: FakeClock) -> KeyRing:
    return open_keyring(tmp_path / "data", clock=clock, passphrase=PASS, use_os_keychain=False)


def test_the_rfc_7638_example_rsa_key_has_the_published_thumbprint() -> None:
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
         "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
         "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRw"
         "r3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    jwk = {"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_the_rfc_8037_example_ed25519_key_has_the_published_thumbprint() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_an_ec_thumbprint_ignores_members_outside_the_required_set() -> None:
    jwk = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB"}
    assert jwk_thumbprint({**jwk, "kid": "k", "use": "sig", "alg": "ES256"}) == jwk_thumbprint(jwk)


def test_a_thumbprint_of_an_incomplete_or_unknown_jwk_is_refused() -> None:
    with pytest.raises(ValueError, match="x"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "y": "BBBB"})
    with pytest.raises(ValueError, match="kty"):
        jwk_thumbprint({"kty": "oct", "k": "c2VjcmV0"})


def test_the_agent_id_is_the_thumbprint_of_the_identity_public_key(ring: KeyRing) -> None:
    public = ring.identity_public_jwk()
    assert set(public) == {"kty", "crv", "x", "y"}
    assert ring.agent_id == jwk_thumbprint(public)
    assert isinstance(ring.identity_key, ec.EllipticCurvePrivateKey)


def test_the_signing_key_id_is_the_thumbprint_of_its_public_key(ring: KeyRing) -> None:
    [published] = ring.public_jwks()["keys"]
    assert published["kid"] == ring.current().kid == jwk_thumbprint(published)
    assert ring.current().kid != ring.agent_id


def test_a_signed_jwt_verifies_with_pyjwt_and_the_published_key(ring: KeyRing) -> None:
    token = ring.sign_jwt({"sub": "alice", "aud": "rs"}, typ="at+jwt", extra_headers={"x5u": "none"})
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": ring.current().kid, "x5u": "none"}
    key = ring.public_key(header["kid"])
    assert key is not None
    assert jwt.decode(token, key, algorithms=["ES256"], audience="rs")["sub"] == "alice"


def test_extra_headers_cannot_override_alg_typ_or_kid(ring: KeyRing) -> None:
    for name in ("alg", "typ", "kid"):
        with pytest.raises(ValueError, match="extra_headers"):
            ring.sign_jwt({}, typ="at+jwt", extra_headers={name: "none"})


def test_an_unknown_kid_has_no_public_key(ring: KeyRing) -> None:
    assert ring.public_key("no-such-kid") is None


def test_the_public_jwks_has_no_private_members(ring: KeyRing) -> None:
    [key] = ring.public_jwks()["keys"]
    assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert key["alg"] == "ES256" and key["use"] == "sig"


def test_the_signed_jwks_verifies_with_nothing_but_the_agent_id(ring: KeyRing) -> None:
    token = ring.signed_jwks(now=1000)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "typ": "jwk-set+jwt", "jwk": ring.identity_public_jwk()}
    assert verify_signed_jwks(token, ring.agent_id, now=1000, max_age=60) == ring.public_jwks()
    payload = unsegment(token.split(".")[1])
    assert payload["iss"] == payload["sub"] == ring.agent_id and payload["iat"] == 1000


def test_a_jwks_with_a_swapped_key_is_rejected(ring: KeyRing) -> None:
    head, body, sig = ring.signed_jwks(now=1000).split(".")
    payload = unsegment(body)
    attacker = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    payload["keys"] = [{"kty": "EC", "crv": "P-256", "x": b64(attacker.x.to_bytes(32, "big")),
                        "y": b64(attacker.y.to_bytes(32, "big")), "kid": "evil"}]
    with pytest.raises(KeyStoreError, match="signature"):
        verify_signed_jwks(f"{head}.{segment(payload)}.{sig}", ring.agent_id)


def test_a_jwks_with_an_edited_payload_is_rejected(ring: KeyRing) -> None:
    head, body, sig = ring.signed_jwks(now=1000).split(".")
    payload = {**unsegment(body), "iat": 2000}
    with pytest.raises(KeyStoreError, match="signature"):
        verify_signed_jwks(f"{head}.{segment(payload)}.{sig}", ring.agent_id)


def test_a_jwks_signed_by_another_key_with_the_agents_jwk_header_is_rejected(ring: KeyRing) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    payload = {"iss": ring.agent_id, "sub": ring.agent_id, "iat": 1000, "keys": ring.public_jwks()["keys"]}
    forged = jwt.encode(payload, other, algorithm="ES256",
                        headers={"typ": "jwk-set+jwt", "jwk": ring.identity_public_jwk()})
    with pytest.raises(KeyStoreError, match="signature"):
        verify_signed_jwks(forged, ring.agent_id)


def test_a_jwks_signed_and_named_by_another_identity_is_rejected(ring: KeyRing, tmp_path: Path) -> None:
    impostor = open_keyring(tmp_path / "impostor", clock=FakeClock(), passphrase=PASS, use_os_keychain=False)
    token = impostor.sign_with_identity({"iss": ring.agent_id, "sub": ring.agent_id, "iat": 1000,
                                         "keys": impostor.public_jwks()["keys"]}, typ="jwk-set+jwt")
    with pytest.raises(KeyStoreError, match="identity key"):
        verify_signed_jwks(token, ring.agent_id)


def test_an_unsigned_jwks_is_rejected(ring: KeyRing) -> None:
    head, body, _ = ring.signed_jwks(now=1000).split(".")
    none_head = segment({**unsegment(head), "alg": "none"})
    with pytest.raises(KeyStoreError, match="ES256"):
        verify_signed_jwks(f"{none_head}.{body}.", ring.agent_id)


def test_a_stale_or_future_jwks_is_rejected_when_a_time_is_given(ring: KeyRing) -> None:
    token = ring.signed_jwks(now=1000)
    with pytest.raises(KeyStoreError, match="too old"):
        verify_signed_jwks(token, ring.agent_id, now=1000 + 3601, max_age=3600)
    with pytest.raises(KeyStoreError, match="future"):
        verify_signed_jwks(token, ring.agent_id, now=1000 - 3600)


def test_garbage_is_rejected_as_a_jwks_with_a_keystore_error(ring: KeyRing) -> None:
    for token in ("", "a.b.c", "not a jws at all", "x" * 70_000):
        with pytest.raises(KeyStoreError):
            verify_signed_jwks(token, ring.agent_id)


def test_an_identity_signed_challenge_verifies_only_for_its_type(ring: KeyRing) -> None:
    token = ring.sign_with_identity({"nonce": "n-1"}, typ="relay-challenge+jwt")
    assert verify_identity_jws(token, ring.agent_id, typ="relay-challenge+jwt") == {"nonce": "n-1"}
    with pytest.raises(KeyStoreError, match="type"):
        verify_identity_jws(token, ring.agent_id, typ="jwk-set+jwt")


def test_derived_secrets_are_32_bytes_stable_and_distinct_per_label(ring: KeyRing, tmp_path: Path,
                                                                     clock: FakeClock) -> None:
    pct, nonce = ring.secret("pct"), ring.secret("dpop-nonce")
    assert len(pct) == 32 and pct != nonce
    again = open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    assert again.secret("pct") == pct


def test_rotation_waits_until_the_current_key_is_due(ring: KeyRing, clock: FakeClock) -> None:
    first = ring.current()
    assert ring.rotate_if_due(int(clock()) + 29 * DAY) is False
    assert ring.current() == first


def test_rotation_keeps_the_old_key_published_then_drops_it_and_persists(
        ring: KeyRing, clock: FakeClock, tmp_path: Path) -> None:
    start, old = int(clock()), ring.current()
    rotated_at = start + 30 * DAY
    assert ring.rotate_if_due(rotated_at, every_days=30, keep_seconds=7 * DAY) is True
    new = ring.current()
    assert new.kid != old.kid and new.created_at == rotated_at
    assert [k["kid"] for k in ring.public_jwks()["keys"]] == [new.kid, old.kid]

    reopened = open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    assert reopened.current().kid == new.kid and reopened.public_key(old.kid) is not None

    assert ring.rotate_if_due(rotated_at + 7 * DAY - 1, keep_seconds=7 * DAY) is False
    assert ring.public_key(old.kid) is not None
    assert ring.rotate_if_due(rotated_at + 7 * DAY, keep_seconds=7 * DAY) is True
    assert ring.public_key(old.kid) is None
    assert [k["kid"] for k in ring.public_jwks()["keys"]] == [new.kid]

    reopened = open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    assert reopened.current().kid == new.kid and reopened.public_key(old.kid) is None


def test_a_token_signed_before_rotation_still_verifies_with_the_retired_key(ring: KeyRing,
                                                                           clock: FakeClock) -> None:
    token = ring.sign_jwt({"sub": "alice"}, typ="at+jwt")
    ring.rotate_if_due(int(clock()) + 30 * DAY)
    key = ring.public_key(jwt.get_unverified_header(token)["kid"])
    assert key is not None and jwt.decode(token, key, algorithms=["ES256"])["sub"] == "alice"


def test_rotation_refuses_nonsense_periods(ring: KeyRing) -> None:
    with pytest.raises(ValueError):
        ring.rotate_if_due(0, every_days=0)


def test_a_backup_restored_into_a_fresh_directory_is_the_same_agent(ring: KeyRing, tmp_path: Path,
                                                                    clock: FakeClock) -> None:
    blob = ring.export_backup("backup words")
    doc = json.loads(blob)
    assert doc["type"] == "consent-agent/key-backup" and doc["agent_id"] == ring.agent_id
    assert doc["kdf"]["name"] == "scrypt" and doc["enc"] == "A256GCM"

    restored = restore_into(tmp_path / "new-device", blob, "backup words", clock=clock,
                            passphrase="new device pass", use_os_keychain=False)
    assert restored.agent_id == ring.agent_id and restored.current().kid == ring.current().kid
    assert restored.secret("cookies") == ring.secret("cookies")
    again = open_keyring(tmp_path / "new-device", clock=clock, passphrase="new device pass")
    assert again.agent_id == ring.agent_id


def test_a_backup_with_the_wrong_passphrase_is_refused(ring: KeyRing) -> None:
    blob = ring.export_backup("backup words")
    with pytest.raises(KeyStoreError, match="wrong passphrase"):
        KeyRing.restore_backup(blob, "guess")


def test_an_altered_backup_is_refused(ring: KeyRing) -> None:
    doc = json.loads(ring.export_backup("backup words"))
    doc["agent_id"] = "someone-else"
    with pytest.raises(KeyStoreError, match="altered"):
        KeyRing.restore_backup(json.dumps(doc).encode(), "backup words")


def test_a_backup_is_not_restored_over_existing_keys(ring: KeyRing, tmp_path: Path, clock: FakeClock) -> None:
    blob = ring.export_backup("backup words")
    with pytest.raises(KeyStoreError, match="already holds keys"):
        restore_into(tmp_path / "data", blob, "backup words", clock=clock, passphrase=PASS)
