"""AtomicJSONStorage: every write is all-or-nothing and durable."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from tinydb import TinyDB

from core.store.atomic import AtomicJSONStorage, StorageCorrupt


def temp_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name]


def test_written_state_reads_back(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "db.json")
    data = {"_default": {"1": {"name": "Zoë", "n": 3}}}
    storage.write(data)
    assert storage.read() == data
    assert AtomicJSONStorage(tmp_path / "db.json").read() == data


def test_missing_and_empty_files_read_as_none(tmp_path: Path) -> None:
    assert AtomicJSONStorage(tmp_path / "absent.json").read() is None
    (tmp_path / "empty.json").write_bytes(b"")
    assert AtomicJSONStorage(tmp_path / "empty.json").read() is None


def test_output_is_compact_json(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "db.json")
    storage.write({"t": {"1": {"a": 1}}})
    assert (tmp_path / "db.json").read_text() == '{"t":{"1":{"a":1}}}'


def test_no_temp_files_are_left_behind(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "db.json")
    for i in range(5):
        storage.write({"t": {str(i): {"i": i}}})
    assert temp_files(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_file_is_private_to_the_owner(tmp_path: Path) -> None:
    AtomicJSONStorage(tmp_path / "db.json").write({"t": {}})
    assert stat.S_IMODE((tmp_path / "db.json").stat().st_mode) == 0o600


def test_crash_before_rename_leaves_previous_state_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.json"
    storage = AtomicJSONStorage(path)
    before = {"t": {"1": {"v": "old"}}}
    storage.write(before)

    def crash(src: str, dst: str) -> None:
        assert Path(src).read_bytes()  # the new state was fully written to the temp file
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        storage.write({"t": {"1": {"v": "new"}}})
    monkeypatch.undo()

    assert storage.read() == before
    assert AtomicJSONStorage(path).read() == before
    assert temp_files(tmp_path) == []


def test_stale_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    (tmp_path / ".db.json.tmp-abc123").write_text('{"half')
    (tmp_path / ".other.json.tmp-abc123").write_text("{}")
    AtomicJSONStorage(tmp_path / "db.json")
    assert temp_files(tmp_path) == [".other.json.tmp-abc123"]


def test_corrupt_file_raises_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    path.write_text('{"t": {"1": ')
    with pytest.raises(StorageCorrupt, match=re.escape(str(path))):
        AtomicJSONStorage(path).read()


def test_non_object_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "db.json"
    path.write_text("[1, 2]")
    with pytest.raises(StorageCorrupt):
        AtomicJSONStorage(path).read()


def test_tinydb_round_trips_through_it(tmp_path: Path) -> None:
    with TinyDB(tmp_path / "db.json", storage=AtomicJSONStorage) as db:
        db.insert({"k": "a"})
        db.insert({"k": "b"})
    with TinyDB(tmp_path / "db.json", storage=AtomicJSONStorage) as db:
        assert [doc["k"] for doc in db.all()] == ["a", "b"]


def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    storage = AtomicJSONStorage(tmp_path / "db.json")
    storage.close()
    with pytest.raises(ValueError, match="closed"):
        storage.write({})
