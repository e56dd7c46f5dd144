"""Tables: one crash-safe file per table, thread-safe writes, and the keyed helpers."""

from __future__ import annotations

import os
import random
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.store.tables import Tables, get_one, remove_by, update_by, upsert_by

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tables(tmp_path: Path) -> Tables:
    return Tables(tmp_path / "data", ["grants", "clients"])


def test_each_table_gets_its_own_file(tables: Tables) -> None:
    upsert_by(tables.table("grants"), "id", {"id": "g1"})
    upsert_by(tables.table("clients"), "id", {"id": "c1"})
    assert sorted(p.name for p in tables.directory.iterdir()) == ["clients.json", "grants.json"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_directory_is_private_to_the_owner(tables: Tables) -> None:
    assert stat.S_IMODE(tables.directory.stat().st_mode) == 0o700


def test_unknown_table_name_is_a_key_error(tables: Tables) -> None:
    with pytest.raises(KeyError, match="nope"):
        tables.table("nope")


def test_table_names_must_be_plain_file_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Tables(tmp_path, ["../escape"])


def test_upsert_inserts_then_replaces_the_whole_document(tables: Tables) -> None:
    grants = tables.table("grants")
    upsert_by(grants, "id", {"id": "g1", "scope": "read", "note": "x"})
    upsert_by(grants, "id", {"id": "g1", "scope": "write"})
    assert grants.all() == [{"id": "g1", "scope": "write"}]


def test_get_one_matches_on_all_given_fields(tables: Tables) -> None:
    grants = tables.table("grants")
    upsert_by(grants, "id", {"id": "g1", "owner": "a", "rs": "x"})
    upsert_by(grants, "id", {"id": "g2", "owner": "a", "rs": "y"})
    assert get_one(grants, owner="a", rs="y") == {"id": "g2", "owner": "a", "rs": "y"}
    assert get_one(grants, owner="b") is None
    with pytest.raises(ValueError):
        get_one(grants)


def test_update_merges_changes_and_reports_whether_it_found_the_document(tables: Tables) -> None:
    grants = tables.table("grants")
    upsert_by(grants, "id", {"id": "g1", "scope": "read"})
    assert update_by(grants, "id", "g1", {"revoked": True}) is True
    assert update_by(grants, "id", "missing", {"revoked": True}) is False
    assert get_one(grants, id="g1") == {"id": "g1", "scope": "read", "revoked": True}


def test_remove_reports_whether_it_found_the_document(tables: Tables) -> None:
    grants = tables.table("grants")
    upsert_by(grants, "id", {"id": "g1"})
    assert remove_by(grants, "id", "g1") is True
    assert remove_by(grants, "id", "g1") is False
    assert len(grants) == 0


def test_mutating_a_result_does_not_change_later_reads(tables: Tables) -> None:
    grants = tables.table("grants")
    upsert_by(grants, "id", {"id": "g1", "scope": "read"})
    found = grants.search(lambda doc: doc["id"] == "g1")
    found[0]["scope"] = "tampered"
    assert get_one(grants, id="g1") == {"id": "g1", "scope": "read"}


def test_writes_through_another_instance_are_seen(tmp_path: Path) -> None:
    first = Tables(tmp_path, ["grants"])
    second = Tables(tmp_path, ["grants"])
    assert get_one(first.table("grants"), id="g1") is None
    upsert_by(second.table("grants"), "id", {"id": "g1"})
    assert get_one(first.table("grants"), id="g1") == {"id": "g1"}


def test_data_survives_reopening(tmp_path: Path) -> None:
    with Tables(tmp_path, ["grants"]) as tables:
        upsert_by(tables.table("grants"), "id", {"id": "g1", "n": 1})
    reopened = Tables(tmp_path, ["grants"])
    assert get_one(reopened.table("grants"), id="g1") == {"id": "g1", "n": 1}


def test_concurrent_writers_lose_no_updates(tables: Tables) -> None:
    grants = tables.table("grants")

    def writer(worker: int) -> None:
        for i in range(15):
            upsert_by(grants, "id", {"id": f"{worker}-{i}"})
            grants.insert({"id": f"plain-{worker}-{i}"})

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [doc["id"] for doc in grants.all()]
    assert len(ids) == len(set(ids)) == 4 * 15 * 2


def test_writes_after_close_are_refused(tables: Tables) -> None:
    tables.close()
    tables.close()
    with pytest.raises(ValueError, match="closed"):
        upsert_by(tables.table("grants"), "id", {"id": "g1"})


WRITER = """
import sys
from pathlib import Path
from core.store.tables import Tables, upsert_by

table = Tables(Path(sys.argv[1]), ["items"]).table("items")
i = len(table)
while True:
    upsert_by(table, "k", {"k": f"item-{i}", "i": i, "pad": "x" * 200})
    print(i, flush=True)
    i += 1
"""


@pytest.mark.skipif(os.name == "nt", reason="needs SIGKILL")
def test_sigkill_at_random_moments_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    acknowledged: set[int] = set()
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(12):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)], stdout=subprocess.PIPE, env=env, cwd=REPO
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # wait until it is writing, then kill at a random moment
        time.sleep(rng.uniform(0.0, 0.15))
        proc.kill()
        rest, _ = proc.communicate()
        lines = (first + rest).split(b"\n")[:-1]  # the part after the last newline may be torn
        assert lines, "the writer never reported a write"
        acknowledged.update(int(line) for line in lines)

        tables = Tables(directory, ["items"])  # must load, whatever moment the kill hit
        stored = {doc["i"] for doc in tables.table("items").all()}
        assert acknowledged <= stored
        assert not [p for p in directory.iterdir() if ".tmp-" in p.name]
        tables.close()
