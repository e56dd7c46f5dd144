"""Keys at rest: passphrase, OS keychain and development plaintext files, and what they leak."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

import core.keys
from core.clock import FakeClock
from core.keys import KeyRing, KeyStoreError, open_keyring, os_keychain_usable
from core.keystore import write_atomic

PASS = "correct horse battery staple"
DAY = 86_400


class MemoryKeyring(KeyringBackend):
    """A keychain that lives in a dict, so tests never touch the developer's real one."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.entries.pop((service, username), None)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def open_in(data_dir: Path, mode: str, clock: FakeClock) -> KeyRing:
    if mode == "passphrase":
        return open_keyring(data_dir, clock=clock, passphrase=PASS)
    if mode == "keyring":
        return open_keyring(data_dir, clock=clock)
    return open_keyring(data_dir, clock=clock, use_os_keychain=False, plaintext_dev=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def private_needles(key: ec.EllipticCurvePrivateKey) -> dict[str, bytes]:
    """Every spelling of a private key that could end up in a file by mistake."""
    d = key.private_numbers().private_value.to_bytes(32, "big")
    needles = {"d base64url": b64(d).encode(), "d hex": d.hex().encode(), "d HEX": d.hex().upper().encode(),
               "d raw": d, "d base64": base64.b64encode(d).rstrip(b"=")}
    formats = {"PKCS8": serialization.PrivateFormat.PKCS8,
               "SEC1": serialization.PrivateFormat.TraditionalOpenSSL}
    for name, fmt in formats.items():
        der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        pem_lines = pem.splitlines()
        needles[f"{name} DER"] = der
        needles[f"{name} PEM body"] = b"".join(pem_lines[1:-1])
        needles[f"{name} PEM first line"] = pem_lines[1]
    return needles


def leaks(data_dir: Path, keys: list[ec.EllipticCurvePrivateKey]) -> list[str]:
    found = []
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            for key in keys:
                found += [f"{path.name}: {name}" for name, needle in private_needles(key).items()
                          if needle in content]
            if PASS.encode() in content:
                found.append(f"{path.name}: the passphrase")
    return found


@pytest.mark.parametrize("mode", ["passphrase", "keyring"])
def test_no_file_in_the_data_dir_holds_private_key_material(mode: str, tmp_path: Path, clock: FakeClock,
                                                            memory_keyring: MemoryKeyring) -> None:
    data_dir = tmp_path / "data"
    ring = open_in(data_dir, mode, clock)
    retired = ring.current().private_key
    ring.rotate_if_due(int(clock()) + 30 * DAY)
    assert len(ring.public_jwks()["keys"]) == 2
    assert ring.protection == mode
    assert leaks(data_dir, [ring.identity_key, ring.current().private_key, retired]) == []
    assert [p.name for p in data_dir.iterdir()] == ["keys.json"]


def test_the_leak_search_does_find_keys_in_a_plaintext_file_which_is_flagged(tmp_path: Path,
                                                                            clock: FakeClock) -> None:
    ring = open_in(tmp_path / "data", "plaintext", clock)
    assert ring.protection == "plaintext"
    doc = json.loads((tmp_path / "data" / "keys.json").read_bytes())
    assert doc["protection"] == "plaintext" and "NOT encrypted" in doc["warning"]
    assert "keys.json: d base64url" in leaks(tmp_path / "data", [ring.identity_key])


def test_a_plaintext_file_is_not_opened_without_asking_for_development_mode(tmp_path: Path,
                                                                            clock: FakeClock) -> None:
    open_in(tmp_path / "data", "plaintext", clock)
    with pytest.raises(KeyStoreError, match="plaintext_dev"):
        open_keyring(tmp_path / "data", clock=clock, use_os_keychain=False)


def test_a_second_open_with_the_same_passphrase_loads_the_same_keys(tmp_path: Path, clock: FakeClock) -> None:
    first = open_keyring(tmp_path / "data", clock=clock, passphrase=PASS, use_os_keychain=False)
    second = open_keyring(tmp_path / "data", clock=clock, passphrase=PASS, use_os_keychain=False)
    assert (second.agent_id, second.current().kid) == (first.agent_id, first.current().kid)
    assert second.current().created_at == int(clock())
    assert second.protection == "passphrase"


def test_the_passphrase_file_is_private_and_describes_its_own_protection(tmp_path: Path,
                                                                         clock: FakeClock) -> None:
    open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    path = tmp_path / "data" / "keys.json"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_bytes())
    assert doc["format"] == 1 and doc["protection"] == "passphrase" and doc["enc"] == "A256GCM"
    scrypt = {k: doc["kdf"][k] for k in ("name", "n", "r", "p")}
    assert scrypt == {"name": "scrypt", "n": 2**15, "r": 8, "p": 1}
    assert len(base64.urlsafe_b64decode(doc["kdf"]["salt"] + "==")) == 16


def test_a_wrong_passphrase_is_refused_with_a_clear_message(tmp_path: Path, clock: FakeClock) -> None:
    open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    with pytest.raises(KeyStoreError, match=f"wrong passphrase for {tmp_path / 'data' / 'keys.json'}"):
        open_keyring(tmp_path / "data", clock=clock, passphrase="not it")


def test_a_passphrase_file_opened_without_a_passphrase_asks_for_one(tmp_path: Path, clock: FakeClock,
                                                                   memory_keyring: MemoryKeyring) -> None:
    open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    with pytest.raises(KeyStoreError, match="--passphrase-file"):
        open_keyring(tmp_path / "data", clock=clock)


def test_an_empty_passphrase_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(KeyStoreError, match="empty"):
        open_keyring(tmp_path / "data", clock=clock, passphrase="")


def test_without_passphrase_keychain_or_dev_mode_the_error_names_all_three(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.keys, "os_keychain_usable", lambda: False)
    with pytest.raises(KeyStoreError) as refused:
        open_keyring(tmp_path / "data", clock=clock)
    message = str(refused.value)
    assert "--passphrase-file F" in message and "CONSENT_AGENT_PASSPHRASE" in message
    assert "keychain (keyring)" in message and "\n" not in message
    assert not (tmp_path / "data" / "keys.json").exists()


def test_with_a_usable_keychain_the_data_key_goes_into_it(tmp_path: Path, clock: FakeClock,
                                                          memory_keyring: MemoryKeyring) -> None:
    ring = open_keyring(tmp_path / "data", clock=clock)
    assert ring.protection == "keyring"
    digest = hashlib.sha256(str((tmp_path / "data").resolve()).encode()).hexdigest()[:16]
    assert list(memory_keyring.entries) == [("consent-agent", f"data-key:{digest}")]
    doc = json.loads((tmp_path / "data" / "keys.json").read_bytes())
    assert doc["protection"] == "keyring" and doc["keychain"]["username"] == f"data-key:{digest}"
    again = open_keyring(tmp_path / "data", clock=clock)
    assert (again.agent_id, again.current().kid) == (ring.agent_id, ring.current().kid)


def test_a_keychain_file_keeps_its_protection_even_when_a_passphrase_is_given(
        tmp_path: Path, clock: FakeClock, memory_keyring: MemoryKeyring) -> None:
    ring = open_keyring(tmp_path / "data", clock=clock)
    again = open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    assert again.protection == "keyring" and again.agent_id == ring.agent_id


def test_a_passphrase_wins_over_a_usable_keychain_for_a_new_file(tmp_path: Path, clock: FakeClock,
                                                                  memory_keyring: MemoryKeyring) -> None:
    assert open_keyring(tmp_path / "data", clock=clock, passphrase=PASS).protection == "passphrase"
    assert memory_keyring.entries == {}


def test_a_keychain_file_whose_entry_is_gone_is_refused(tmp_path: Path, clock: FakeClock,
                                                        memory_keyring: MemoryKeyring) -> None:
    open_keyring(tmp_path / "data", clock=clock)
    memory_keyring.entries.clear()
    with pytest.raises(KeyStoreError, match="missing"):
        open_keyring(tmp_path / "data", clock=clock)


def test_an_existing_keychain_data_key_is_reused_never_overwritten(tmp_path: Path, clock: FakeClock,
                                                                   memory_keyring: MemoryKeyring) -> None:
    open_keyring(tmp_path / "data", clock=clock)
    before = dict(memory_keyring.entries)
    (tmp_path / "data" / "keys.json").unlink()
    open_keyring(tmp_path / "data", clock=clock)
    assert memory_keyring.entries == before


def test_a_backup_restores_into_keychain_protection(tmp_path: Path, clock: FakeClock,
                                                    memory_keyring: MemoryKeyring) -> None:
    ring = open_keyring(tmp_path / "old", clock=clock, passphrase=PASS)
    restored = core.keys.restore_into(tmp_path / "new", ring.export_backup("b"), "b", clock=clock)
    assert restored.protection == "keyring" and restored.agent_id == ring.agent_id
    assert leaks(tmp_path / "new", [restored.identity_key, restored.current().private_key]) == []


def test_the_keychain_counts_as_usable_only_with_a_real_backend(memory_keyring: MemoryKeyring,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert os_keychain_usable() is True
    keyring.set_keyring(fail.Keyring())
    assert os_keychain_usable() is False
    keyring.set_keyring(null.Keyring())
    assert os_keychain_usable() is False
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    keyring.set_keyring(chainer.ChainerBackend())
    assert os_keychain_usable() is False
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [memory_keyring])
    assert os_keychain_usable() is True


def test_an_added_header_member_breaks_the_authenticated_file(tmp_path: Path, clock: FakeClock) -> None:
    open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    path = tmp_path / "data" / "keys.json"
    path.write_text(json.dumps({**json.loads(path.read_bytes()), "note": "harmless?"}))
    with pytest.raises(KeyStoreError, match="altered"):
        open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)


def test_forged_scrypt_parameters_are_refused_before_any_work(tmp_path: Path, clock: FakeClock) -> None:
    open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)
    path = tmp_path / "data" / "keys.json"
    doc = json.loads(path.read_bytes())
    doc["kdf"]["n"] = 2**30
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match="damaged"):
        open_keyring(tmp_path / "data", clock=clock, passphrase=PASS)


@pytest.mark.parametrize("content", [b"", b"{not json", b"[]", b'{"format": 2, "protection": "passphrase"}'])
def test_an_unreadable_key_file_is_a_keystore_error_not_a_traceback(content: bytes, tmp_path: Path,
                                                                    clock: FakeClock) -> None:
    (tmp_path / "keys.json").write_bytes(content)
    with pytest.raises(KeyStoreError):
        open_keyring(tmp_path, clock=clock, passphrase=PASS)


def test_an_exclusive_write_never_replaces_an_existing_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "keys.json", b"first", exclusive=True)
    with pytest.raises(KeyStoreError, match="already exists"):
        write_atomic(tmp_path / "keys.json", b"second", exclusive=True)
    write_atomic(tmp_path / "keys.json", b"third")
    assert (tmp_path / "keys.json").read_bytes() == b"third"
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]
