"""The in-memory registry of RPTs and refresh grants stays small and fast under load."""

from __future__ import annotations

from core.tokens import RefreshGrant, RptRecord, TokenRegistry


def rpt(jti: str, exp: int) -> RptRecord:
    return RptRecord(jti, "client", "rs", "party", [], (), exp)


def test_expired_rpts_are_forgotten_as_new_ones_arrive():
    reg = TokenRegistry()
    for i in range(100):
        reg.add(rpt(f"old{i}", exp=1000), now=900)
    reg.add(rpt("new", exp=2300), now=2000)
    assert set(reg.rpts) == {"new"}


def test_live_rpts_are_kept_and_a_cap_forgets_the_oldest_first():
    reg = TokenRegistry(max_live=3)
    for i in range(5):
        reg.add(rpt(f"t{i}", exp=5000), now=1000)
    assert list(reg.rpts) == ["t2", "t3", "t4"]
    assert reg.get("t0") is None  # forgotten means inactive: fail closed


def test_grants_expire_and_their_refresh_hashes_with_them():
    reg = TokenRegistry()
    reg.add_grant(RefreshGrant("g1", "c", "rs", "p", (), (), None, "h1", expires_at=1000), now=900)
    reg.add_grant(RefreshGrant("g2", "c", "rs", "p", (), (), None, "h2", expires_at=3000), now=2000)
    assert reg.grant_by_refresh("h1") is None and reg.grant_by_refresh("h2") is not None
