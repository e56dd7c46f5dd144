"""What a guardian must never learn or lose, found by review: excluded records leaking through counts
and answers, a co-guardian tricked into a yes by a request the home agent never made, decisions
racing the end of a guardianship or a hand-over (the check and the write must hold the state lock),
and an import cut short by a crash."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core import guardian, handover, jose
from core.errors import OwnerError
from core.owner import Owner
from tests.guardian.conftest import SEX, Family
from tests.kit import make_agent

MIA = "https://mia.example"
SECRET = "a passphrase for Mia"


def relabel(family: Family, rid: str, name: str, labels: list[str]) -> None:
    """The lab replaces a resource's description (FedAuthz §3.2.3), now with sensitivity labels."""
    path = f"/resource_set/{rid}"
    r = family.lab.http.put(family.lab.url(path), json={"name": name, "resource_scopes": ["read"],
                                                        "security_labels": labels},
                            headers=family.lab.protected("PUT", path))
    assert r.status_code == 200, r.text


def test_the_status_counts_only_what_the_guardian_may_see(family: Family) -> None:
    shown = family.owner.resources()
    assert [r["_id"] for r in shown] == [family.labs]  # the clinic notes are excluded
    status = family.owner.status()
    assert status["resources"] == len(shown)


def test_ending_a_guardianship_never_shows_a_share_on_a_record_excluded_since(family: Family) -> None:
    """A record first registered without a label, shared ahead by Anna, then labelled SEX by the lab:
    from then on it is Mia's alone, also in what ending the guardianship answers."""
    visit = family.lab.register_resource({"name": "Clinic visit notes", "resource_scopes": ["read"]})
    made = family.owner.share(profile="mia", resource_id=visit, scopes=["read"], grantee="email:bob@clinic.example")
    relabel(family, visit, "Clinic visit notes", [SEX])
    assert family.owner.shares() == []

    ended = family.owner.end_guardianship("mia")
    assert "Clinic visit notes" not in repr(ended)
    assert made["id"] not in repr(ended["shares_to_review"])
    assert family.owner.shares_to_review("mia") == []
    with pytest.raises(OwnerError) as unknown:
        family.owner.keep_share("sh_nope")
    with pytest.raises(OwnerError) as hidden:
        family.owner.keep_share(made["id"])
    assert (hidden.value.status, str(hidden.value)) == (unknown.value.status,
                                                         str(unknown.value).replace("sh_nope", made["id"]))
    assert family.owner.status()["resources"] == len(family.owner.resources()) == 1


def test_the_handover_summary_counts_what_the_guardian_may_see_and_the_bundle_carries_everything(
        family: Family, tmp_path: Path) -> None:
    family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"], grantee="email:bob@clinic.example")
    out = family.owner.handover_export("mia", to=MIA, passphrase=SECRET)
    assert (out["resources"], out["shares"]) == (1, 1)
    content = handover.open_bundle(out["bundle"], SECRET).content
    assert sorted(r["_id"] for r in content["resources"]) == sorted([family.labs, family.clinic_notes])


def test_a_co_guardians_yes_to_a_request_the_home_agent_never_made_does_not_count(
        family: Family, tmp_path: Path) -> None:
    """Carl saw Anna's request to Ben go by (it is signed, not secret). He signs one of his own with
    the same item and digest but a harmless story, naming Anna's agent as its issuer. Ben's agent
    cannot tell Anna's agent id from Carl's; Anna's agent must refuse a yes given to Carl's story."""
    ben_agent = make_agent(tmp_path / "ben", clock=family.clock, public_url="https://ben.example")
    carl_agent = make_agent(tmp_path / "carl", clock=family.clock, public_url="https://carl.example")
    try:
        family.owner.add_guardian("mia", name="Ben", agent_id=ben_agent.keys.agent_id, issuer="https://ben.example")
        family.ask(family.labs, ["read", "write"])
        [item] = family.owner.inbox()
        genuine = family.owner.decision_request(item["id"])["request"]
        story = jose.unverified_claims(genuine, max_size=guardian.MAX_DECISION) | {
            "iss": carl_agent.keys.agent_id, "purpose": "the school trip form",
            "client": {"client_id": "c_school", "client_name": "School nurse"},
            "permissions": [{"resource_id": family.labs, "resource_name": "Vaccination card",
                             "scopes": ["read", "write"]}]}
        forged = carl_agent.keys.sign_with_identity(story, typ=guardian.REQUEST_TYP)

        signed = Owner(ben_agent).sign_decision(forged, approve=True)
        assert signed["request"]["purpose"] == "the school trip form"  # what Ben was shown
        with pytest.raises(OwnerError, match="did not make") as refused:
            family.owner.accept_decision(signed["decision"])
        assert refused.value.status == 403
        assert [i["status"] for i in family.owner.inbox()] == ["pending"] and family.owner.shares() == []

        honest = Owner(ben_agent).sign_decision(genuine, approve=True, scopes=["read"])
        done = family.owner.accept_decision(honest["decision"])
        assert [p["scopes"] for p in done["share"]["permissions"]] == [["read"]]
    finally:
        ben_agent.close()
        carl_agent.close()


# --- races: the check and the write hold the state lock ------------------------------------------------


class Meanwhile:
    """Run ``other`` on another thread the first time ``module.name`` is called, and give it the
    chance to finish before the call goes on: without the lock it slips in between check and write."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: Any, name: str, other: Callable[[], Any]) -> None:
        self.other = other
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None
        original = getattr(module, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, daemon=True)
                self.thread.start()
                self.thread.join(timeout=1.0)  # with the lock held, it waits for us: no need to wait longer
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, hooked)

    def _run(self) -> None:
        try:
            self.result = self.other()
        except BaseException as exc:  # reported to the test
            self.error = exc

    def finish(self) -> None:
        assert self.thread is not None, "the race never started"
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def later_owner(family: Family) -> Iterator[Owner]:
    yield Owner(family.agent)


def test_a_share_made_while_the_guardianship_is_ended_still_gets_its_review(
        family: Family, later_owner: Owner, monkeypatch: pytest.MonkeyPatch) -> None:
    import core.owner

    race = Meanwhile(monkeypatch, core.owner, "parse_grantee", lambda: later_owner.end_guardianship("mia"))
    made = family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"],
                              grantee="email:bob@clinic.example")
    race.finish()
    assert race.error is None
    share = family.agent.state.share(made["id"])
    assert share is not None
    # made before the end: the end opened its review; it cannot have been made after the end
    assert share.review_due is not None, "a guardian's share made after the end, with no review deadline"


def test_a_revocation_racing_the_end_happens_before_it_or_not_at_all(
        family: Family, monkeypatch: pytest.MonkeyPatch) -> None:
    made = family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"],
                              grantee="email:bob@clinic.example")
    other = Owner(family.agent)
    race = Meanwhile(monkeypatch, guardian, "actor", lambda: other.end_guardianship("mia"))
    family.owner.revoke(made["id"])  # allowed when checked; the end comes while it is being written
    race.finish()
    share = family.agent.state.share(made["id"])
    assert share is not None and share.revoked_at is not None
    # revoked before the end: the end found no active share of Anna's to put under review
    assert share.review_due is None, "the guardian revoked after the guardianship had ended"


def test_an_approval_racing_the_hand_over_is_in_the_bundle_or_refused_never_lost(
        family: Family, later_owner: Owner, monkeypatch: pytest.MonkeyPatch) -> None:
    assert family.ask(family.labs).json()["error"] == "request_submitted"
    [item] = family.owner.inbox()
    race = Meanwhile(monkeypatch, handover, "seal", lambda: later_owner.approve(item["id"]))
    out = family.owner.handover_export("mia", to=MIA, passphrase=SECRET)
    race.finish()
    carried = {s["id"] for s in handover.open_bundle(out["bundle"], SECRET).content["shares"]}
    if race.error is None:
        assert race.result["share"]["id"] in carried, "the owner was told 'approved', and the share was left behind"
    else:
        assert isinstance(race.error, OwnerError) and race.error.status == 409, race.error


def test_an_import_cut_short_by_a_crash_can_be_run_again(family: Family, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The power goes out halfway through writing an imported profile: what was written stays
    loadable, and importing the same bundle again completes it (it is not taken for a clash)."""
    family.owner.share(profile="mia", resource_id=family.labs, scopes=["read"], grantee="email:bob@clinic.example")
    bundle = family.owner.handover_export("mia", to=MIA, passphrase=SECRET)["bundle"]
    mia_agent = make_agent(tmp_path / "mia", clock=family.clock, public_url=MIA)
    try:
        put = mia_agent.state.put

        def cut(table: str, key: str, doc: Any) -> None:
            if table == "shares":
                raise OSError("power cut")
            put(table, key, doc)

        monkeypatch.setattr(mia_agent.state, "put", cut)
        with pytest.raises(OSError, match="power cut"):
            Owner(mia_agent).handover_import(bundle, passphrase=SECRET)
        monkeypatch.setattr(mia_agent.state, "put", put)
        assert len(mia_agent.state.all("resources")) == 2 and mia_agent.state.all("handovers") == []

        done = Owner(mia_agent).handover_import(bundle, passphrase=SECRET)
        assert (done["resources"], done["shares"]) == (2, 1)
        assert len(Owner(mia_agent).shares()) == 1 and len(Owner(mia_agent).history()) == 1
        with pytest.raises(OwnerError, match="imported already"):
            Owner(mia_agent).handover_import(bundle, passphrase=SECRET)
    finally:
        mia_agent.close()
