"""Plain words for what the agent knows: no protocol vocabulary ever reaches the screen.

Everything here is a pure function of its arguments (the ``Names`` directory is a plain value the
shell fills from the owner's state), so it is unit-tested without Flet or a browser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from core.owner import Lifetime

# what they may do ---------------------------------------------------------------------------------
SCOPE_WORDS = {
    "read": "see", "view": "see", "write": "add to or change", "create": "add to", "update": "change",
    "delete": "delete", "share": "pass on",
}


def scope_words(scope: str) -> str:
    """``read`` → "see", ``write`` → "add to or change"; a scope we do not know is shown as it is."""
    return SCOPE_WORDS.get(scope.lower(), scope)


def join_words(items: Iterable[str], last: str = "and") -> str:
    """``["a"]`` → "a"; ``["a", "b", "c"]`` → "a, b and c" (repeats dropped, order kept)."""
    seen = list(dict.fromkeys(i for i in items if i))
    if len(seen) <= 1:
        return seen[0] if seen else ""
    return f"{', '.join(seen[:-1])} {last} {seen[-1]}"


def can_do(scopes: Sequence[str], thing: str) -> str:
    """What someone may do with one record: "see and add to or change Lab results"."""
    known = [scope_words(s) for s in scopes if s.lower() in SCOPE_WORDS]
    other = [s for s in scopes if s.lower() not in SCOPE_WORDS]
    if known:
        text = f"{join_words(known)} {thing}"
        return f"{text} (and also “{'”, “'.join(other)}”)" if other else text
    if other:
        return f"use {thing} for “{'”, “'.join(other)}”"
    return thing


def permissions_words(permissions: Iterable[Mapping[str, Any]], names: Names | None = None) -> str:
    """Several records: "see Lab results and see and add to or change Imaging"."""
    parts = []
    for p in permissions:
        rid = str(p.get("resource_id") or "")
        thing = p.get("resource_name") or (names.resource(rid) if names else rid) or "a record"
        parts.append(can_do(list(p.get("scopes") or []), str(thing)))
    return join_words(parts) or "your records"


def records_words(permissions: Iterable[Mapping[str, Any]], names: Names | None = None) -> str:
    """Just which records: "Lab results and Imaging"."""
    return join_words(str(p.get("resource_name") or (names.resource(str(p.get("resource_id")))
                                                        if names else p.get("resource_id")))
                      for p in permissions) or "your records"


def scope_choice_label(scope: str, things: Sequence[str]) -> str:
    """A checkbox in the Share dialog: "See Lab results"."""
    return capitalize(can_do([scope], join_words(things) or "these records"))


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


# time ----------------------------------------------------------------------------------------------
def date_words(ts: float, tz: tzinfo | None = None) -> str:
    """``22 Nov 2026`` in the given time zone (local time when None)."""
    d = datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts).astimezone()
    return f"{d.day} {d:%b %Y}"


def time_words(ts: float, tz: tzinfo | None = None) -> str:
    """``22 Nov 2026, 14:05``."""
    d = datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts).astimezone()
    return f"{d.day} {d:%b %Y, %H:%M}"


def relative_time(ts: float, now: float, tz: tzinfo | None = None) -> str:
    """"just now", "2 minutes ago", "3 hours ago", "yesterday", "5 days ago", else the date."""
    delta = now - ts
    if delta < -60:
        return f"on {date_words(ts, tz)}"
    if delta < 45:
        return "just now"
    if delta < 90:
        return "a minute ago"
    if delta < 3600:
        return f"{round(delta / 60)} minutes ago"
    if delta < 5400:
        return "an hour ago"
    if delta < 86400:
        return f"{round(delta / 3600)} hours ago"
    if delta < 2 * 86400:
        return "yesterday"
    if delta < 7 * 86400:
        return f"{int(delta // 86400)} days ago"
    return f"on {date_words(ts, tz)}"


LIFETIME_CHOICES: tuple[tuple[str, str], ...] = (
    ("once", "Just this once"), ("day", "A day"), ("month", "A month"), ("always", "Until I revoke"),
)

DEFAULT_LIFETIME = "month"
"""Pre-selected in the Share dialogs: long enough for a course of care, short enough to lapse on its own."""


def lifetime_for(choice: str) -> Lifetime:
    """The Share dialog's radio choice as the owner's lifetime."""
    return {"once": Lifetime(once=True), "day": Lifetime(days=1), "month": Lifetime(days=30),
            "always": Lifetime()}[choice]


def lifetime_words(share: Mapping[str, Any], now: float, tz: tzinfo | None = None) -> str:
    """How long a share lasts, or how it ended: "until 22 Nov 2026", "until you revoke", "just once"."""
    if share.get("revoked_at"):
        return f"stopped on {date_words(share['revoked_at'], tz)}"
    expires = share.get("expires_at")
    if share.get("once"):
        if share.get("used_at"):
            return f"just once (used on {date_words(share['used_at'], tz)})"
        return "just once" if not expires or expires > now else f"just once, ended on {date_words(expires, tz)}"
    if expires is None:
        return "until you revoke"
    if expires > now:
        return f"until {date_words(expires, tz)}"
    return f"ended on {date_words(expires, tz)}"


def origin_words(share: Mapping[str, Any]) -> str:
    return "when you approved a request" if share.get("origin") == "request" else "shared ahead of time"


# who ------------------------------------------------------------------------------------------------
@dataclass
class Names:
    """Who and what the ids stand for, as far as the agent knows (filled by the shell)."""

    issuers: dict[str, str] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``issuer#subject`` → {"name", "email"}."""
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    """inbox id → the inbox item (any status)."""
    shares: dict[str, dict[str, Any]] = field(default_factory=dict)
    profiles: dict[str, str] = field(default_factory=dict)
    connections: dict[str, str] = field(default_factory=dict)
    """connection id → client id."""
    resource_profiles: dict[str, str] = field(default_factory=dict)
    """resource id → the profile it belongs to."""
    connection_profiles: dict[str, str] = field(default_factory=dict)
    """connection id → the profile its records go to."""
    agent_id: str | None = None
    """This agent's id: a decision made on another agent (a co-guardian's, or a guardian's before a
    hand-over) is told apart from the owner's own."""

    def issuer(self, iss: str | None) -> str:
        if not iss:
            return "an unknown issuer"
        return self.issuers.get(iss) or re.sub(r"^https?://", "", iss).rstrip("/")

    def client(self, client_id: str | None) -> str:
        if not client_id:
            return "an app"
        return self.clients.get(client_id) or f"an app ({client_id[:12]})"

    def resource(self, rid: str) -> str:
        return self.resources.get(rid) or "a record that was removed"

    def person(self, issuer: str | None, subject: str | None) -> str:
        """The person's name if it was ever seen, else their e-mail, else their id at the issuer."""
        seen = self.people.get(f"{issuer}#{subject}") or {}
        return str(seen.get("name") or seen.get("email") or subject or "someone")

    def profile(self, pid: str | None) -> str:
        if pid in (None, "me"):
            return self.profiles.get("me", "you")
        return self.profiles.get(str(pid), str(pid))

    def whose(self, pid: str | None) -> str:
        """"your" for the owner's own profile, else "Mia's"."""
        return "your" if pid in (None, "me") else f"{self.profile(pid)}'s"


def registration_words(registration: str | None, names: Names) -> str:
    """How the app introduced itself: "registered itself" or "vouched for by City Hospital"."""
    kind, _, issuer = (registration or "dynamic").partition(":")
    if kind == "software_statement" and issuer:
        return f"vouched for by {names.issuer(issuer)}"
    return "registered itself"


def requester_words(requester: Mapping[str, Any] | None, names: Names) -> tuple[str, str]:
    """(who, how sure): ("Dr. Bob Jones · bob@clinic.example", "Verified by City Hospital") or a clear
    "Not verified" for a request that carried no identity we could check."""
    if not requester:
        return "Someone who did not say who they are", "Not verified"
    name = requester.get("name") or requester.get("email") or requester.get("subject") or "Someone"
    email = requester.get("email")
    who = f"{name} · {email}" if email and email != name else str(name)
    if requester.get("verified", True):
        return who, f"Verified by {names.issuer(requester.get('issuer'))}"
    return who, "Not verified"


def requester_name(requester: Mapping[str, Any] | None) -> str:
    """The short name used in button labels: "Dr. Bob Jones"."""
    if not requester:
        return "this request"
    return str(requester.get("name") or requester.get("email") or requester.get("subject") or "this person")


def grantee_words(grantee: Mapping[str, Any], names: Names) -> str:
    """Who a share is for, in plain words."""
    kind = grantee.get("kind")
    if kind == "person":
        issuer = grantee.get("issuer")
        return f"{names.person(issuer, grantee.get('subject'))} (verified by {names.issuer(issuer)})"
    if kind == "email":
        return f"whoever proves the e-mail address {grantee.get('email')}"
    if kind == "class":
        return (f"anyone at {names.issuer(grantee.get('issuer'))} whose {grantee.get('claim')} "
                f"is {grantee.get('value')}")
    if kind == "client":
        return f"the app {names.client(grantee.get('client_id'))}"
    return "someone"


def grantee_short(grantee: Mapping[str, Any], names: Names) -> str:
    """The short form for labels and dialogs: "Dr. Bob Jones", "bob@clinic.example"."""
    kind = grantee.get("kind")
    if kind == "person":
        return names.person(grantee.get("issuer"), grantee.get("subject"))
    if kind == "email":
        return str(grantee.get("email"))
    if kind == "class":
        return f"anyone at {names.issuer(grantee.get('issuer'))} whose {grantee.get('claim')} is {grantee.get('value')}"
    return names.client(grantee.get("client_id"))


def grantee_from_text(text: str) -> dict[str, Any]:
    """The owner's ``email:…``/``sub:…``/``client:…``/``class:…`` form (as in the activity log) as a dict."""
    kind, _, rest = (text or "").partition(":")
    if kind == "email":
        return {"kind": "email", "email": rest}
    if kind == "client":
        return {"kind": "client", "client_id": rest}
    if kind == "sub":
        issuer, _, subject = rest.rpartition("#")
        return {"kind": "person", "issuer": issuer, "subject": subject}
    if kind == "class":
        issuer, _, cond = rest.rpartition("#")
        claim, _, value = cond.partition("=")
        return {"kind": "class", "issuer": issuer, "claim": claim, "value": value}
    return {"kind": "unknown"}


def party_words(party: str | None, names: Names) -> str | None:
    """The activity log's ``issuer#subject`` (or ``client:ID``) as a person's name; None for an app."""
    if not party or party.startswith("client:"):
        return None
    issuer, _, subject = party.rpartition("#")
    return names.person(issuer, subject)


# guardianship --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Category:
    """A kind of care a guardian can be kept out of, as the Profiles screen offers it."""

    key: str
    label: str
    """The checkbox: "Mental health"."""
    words: str
    """In a sentence: "mental health"."""
    codes: tuple[str, ...]
    """The HL7 v3 sensitivity codes it stands for (core/guardian.py, docs/guardians.md)."""


CATEGORIES: tuple[Category, ...] = (
    Category("mental", "Mental health", "mental health", ("PSY", "MH", "BH")),
    Category("sexual", "Sexual and reproductive health", "sexual health", ("SEX", "STD")),
    Category("substance", "Substance use", "substance use", ("ETH", "SUD")),
    Category("assault", "Sexual assault, abuse or domestic violence", "sexual assault and abuse", ("SDV",)),
    Category("hiv", "HIV", "HIV", ("HIV",)),
)

COVER_CHOICES: tuple[tuple[str, str], ...] = (
    ("approve", "Say yes to requests"), ("deny", "Say no to requests"), ("share", "Share ahead of time"),
    ("revoke", "Stop sharing"), ("connect", "Connect labs and clinics"),
)
"""The kinds of decision a guardianship covers (core.guardian.DECISIONS), as checkboxes."""

DEFAULT_OWNER_NAME = "Me"
"""The name an agent's owner has until they give theirs (``core.guardian.owner_name``): it says
nothing about who decided, so another agent's "Me" is shown as "your guardian"."""

_COVER_WORDS = {"approve": "saying yes to requests", "deny": "saying no to requests",
                "share": "sharing ahead of time", "revoke": "stopping a sharing",
                "connect": "connecting labs and clinics"}

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_LEVEL_WORDS = {"U": "unrestricted", "L": "low confidentiality", "M": "moderate confidentiality",
                "N": "normal confidentiality", "R": "restricted", "V": "very restricted"}


def _code(rule: str) -> str:
    return str(rule).rpartition("|")[2].upper()


def category_codes(keys: Iterable[str]) -> list[str]:
    """The codes to exclude for the ticked categories, in order, without repeats."""
    chosen = set(keys)
    return list(dict.fromkeys(c for cat in CATEGORIES if cat.key in chosen for c in cat.codes))


def excluded_categories(codes: Iterable[str]) -> set[str]:
    """The categories every code of which is excluded already (their checkboxes stay ticked)."""
    have = {_code(c) for c in codes}
    return {cat.key for cat in CATEGORIES if set(cat.codes) <= have}


def excluded_words(codes: Iterable[str]) -> list[str]:
    """What a guardianship keeps out, in plain words: whole categories first, then single codes
    ("psychiatry"; a code without words as it is)."""
    from core.guardian import SENSITIVITY_WORDS

    rules = list(dict.fromkeys(str(c) for c in codes))
    have = {_code(c) for c in rules}
    out: list[str] = []
    covered: set[str] = set()
    for cat in CATEGORIES:
        if set(cat.codes) <= have:
            out.append(cat.words)
            covered |= set(cat.codes)
    for rule in rules:
        code = _code(rule)
        if code not in covered:
            out.append(SENSITIVITY_WORDS.get(code, code))
            covered.add(code)
    return list(dict.fromkeys(out))


def label_words(labels: Iterable[str]) -> list[str]:
    """A record's security labels (``system|code``) in plain words: "mental health", "restricted"."""
    from core.guardian import SENSITIVITY_WORDS

    out = []
    for label in labels:
        if not isinstance(label, str):
            continue
        system, _, code = label.rpartition("|")
        code = code.upper()
        if system == CONFIDENTIALITY:
            out.append(_LEVEL_WORDS.get(code, code))
        else:
            out.append(SENSITIVITY_WORDS.get(code, code))
    return list(dict.fromkeys(out))


def covers_words(covers: Iterable[str]) -> str:
    """"saying yes to requests and stopping a sharing"."""
    return join_words(_COVER_WORDS.get(c, c) for c in covers)


def guardianship_words(g: Mapping[str, Any]) -> str:
    """A guardianship (``Owner.profiles()[i]["guardianship"]``) in one line for the banner:
    "Until 2 Mar 2027 · Not shown: mental health, sexual health"."""
    parts = []
    end = g.get("ends_at")
    if g.get("status") == "ended":
        parts.append(f"Ended on {date_words(float(end), UTC)}" if end else "Ended")
    elif g.get("status") == "not_started":
        parts.append(f"Starts on {date_words(float(g['starts_at']), UTC)}")
    else:
        parts.append(f"Until {date_words(float(end), UTC)}" if end else "No end date")
    hidden = excluded_words(x["code"] if isinstance(x, Mapping) else x for x in g.get("exclude") or ())
    if hidden:
        parts.append(f"Not shown: {', '.join(hidden)}")
    covers = list(g.get("covers") or ())
    missing = [c for c, _ in COVER_CHOICES if c not in covers]
    if covers and missing:
        parts.append(f"Not allowed: {covers_words(missing)}")
    others = [x.get("name") for x in g.get("guardians") or () if x.get("id") != "me"]
    if others:
        both = g.get("require") == "both"
        parts.append(f"With {join_words(str(n) for n in others)}" + (" (both must agree)" if both else ""))
    return " · ".join(parts)


def _decided_here(by: Mapping[str, Any], names: Names) -> bool:
    return by.get("id") == "me" and (names.agent_id is None or by.get("agent_id") in (None, names.agent_id))


def decided_words(by: Mapping[str, Any] | None, profile: str | None, names: Names) -> str | None:
    """Who took a decision, for whom: "You decided for Mia as guardian", "Mia decided",
    "Decided by the other guardian, Ben", "Anna decided for you as your guardian"."""
    if not by:
        return None
    role = by.get("role")
    whom = names.profile(profile)
    own = profile in (None, "me")
    if _decided_here(by, names):
        if role == "guardian":
            return f"You decided for {whom} as guardian"
        if role == "proxy":
            return f"You decided for {whom} on their behalf"
        return "You decided"
    name = by.get("name") if by.get("name") != DEFAULT_OWNER_NAME else None
    if role == "self":
        return f"{name or whom} decided"
    if role == "guardian":
        if own:
            return f"{name} decided for you as your guardian" if name else "Your guardian decided for you"
        return f"Decided by the other guardian, {name}" if name else "Decided by the other guardian"
    return f"{name or 'Someone'} decided for {'you' if own else whom} on {'your' if own else 'their'} behalf"


def notice_words(notice: Mapping[str, Any]) -> str:
    """``Owner.notices()`` in the app's words."""
    if notice.get("kind") == "shares_to_review":
        n = int(notice.get("count") or 0)
        return (f"{n} sharing{'s' if n != 1 else ''} a guardian made for you wait{'s' if n == 1 else ''} for you "
                "to keep or stop.")
    return str(notice.get("message") or "")


def entry_profile(entry: Mapping[str, Any], names: Names) -> str | None:
    """The profile an activity entry is about, if it can be told: it names it, or one of its things."""
    for key in ("on_behalf_of", "profile"):
        if entry.get(key):
            return str(entry[key])
    request = names.requests.get(str(entry.get("inbox_id") or entry.get("item_id") or ""))
    if request and request.get("kind") == "access":
        return str(request.get("profile") or "me")
    share = names.shares.get(str(entry.get("share_id") or ""))
    if share:
        return str(share.get("profile") or "me")
    if entry.get("connection_id") in names.connection_profiles:
        return names.connection_profiles[str(entry["connection_id"])]
    if entry.get("resource_id") in names.resource_profiles:
        return names.resource_profiles[str(entry["resource_id"])]
    return None


def entry_context(entry: Mapping[str, Any], names: Names) -> str | None:
    """The line under an activity sentence: whose records, and who decided ("Mia's records · You
    decided for Mia as guardian"); None when there is nothing to add."""
    pid = entry_profile(entry, names)
    parts = []
    if pid is not None:
        parts.append(capitalize(f"{names.whose(pid)} records"))
    decided = decided_words(entry.get("decided_by"), pid, names)
    if decided:
        parts.append(decided)
    return " · ".join(parts) or None


# errors ----------------------------------------------------------------------------------------------
_ERRORS: tuple[tuple[str, str], ...] = (
    (r"was already (approved|denied)", "Someone already answered this request ({0})."),
    (r"no request .* in the inbox", "This request is no longer waiting."),
    (r"scope .* was not asked for", "You can only share what was asked for."),
    (r"nothing left to share", "Tick at least one thing to share."),
    (r"scopes must be some of", "Choose at least one thing they may do."),
    (r"another profile's records", "This request is for someone else's records."),
    (r"that date is already past", "That date is already past."),
    (r"days must be a positive", "Choose how long to share."),
    (r"grantee must be", "Say with whom to share."),
    (r"issuer must be an https URL", "The issuer's address must start with https://."),
    (r"give the issuer's keys", "Give either the address of the issuer's keys or paste the keys."),
    (r"not a JWK Set", "That is not a list of public keys."),
    (r"holds private keys", "Those keys include private keys. Paste only the issuer's public keys."),
    (r"a profile needs a name", "A profile needs a name of 1 to 80 characters."),
    (r"exists already", "There is already a profile with that name."),
    (r"no resource .* in profile", "That record does not belong to this profile."),
    (r"no share", "That sharing no longer exists."),
    (r"no connection", "That connection no longer exists."),
)


def plain_error(message: str) -> str:
    """An owner error as a sentence for people (the core's messages can name protocol things)."""
    for pattern, text in _ERRORS:
        m = re.search(pattern, message, re.IGNORECASE)
        if m:
            return text.format(*m.groups())
    cleaned = re.sub(r"\b(scopes?|RPTs?|PATs?|tickets?|UMA)\b", "permission", message)
    return capitalize(cleaned.rstrip(".")) + "."


# the activity log ---------------------------------------------------------------------------------------
ACCESS_EVENTS = frozenset({"rpt_issued", "introspection"})
OUTCOMES: tuple[tuple[str, str], ...] = (
    ("asked", "Requests"), ("shared", "Shared"), ("denied", "Refused"), ("stopped", "Stopped"),
    ("access", "Access"), ("other", "Other"),
)
_OUTCOME_OF = {
    "request_submitted": "asked", "connect_requested": "asked",
    "request_approved": "shared", "share_created": "shared", "pat_issued": "shared", "share_kept": "shared",
    "request_denied_by_owner": "denied", "request_denied": "denied",
    "share_revoked": "stopped", "rs_disconnected": "stopped", "pat_revoked": "stopped", "grant_revoked": "stopped",
    "token_revoked": "stopped",
    "rpt_issued": "access", "introspection": "access", "rpt_refreshed": "access",
}


def event_outcome(entry: Mapping[str, Any]) -> str:
    return _OUTCOME_OF.get(str(entry.get("event")), "other")


def _request_person(entry: Mapping[str, Any], names: Names) -> str | None:
    item = names.requests.get(str(entry.get("inbox_id") or entry.get("item_id") or ""))
    if item and item.get("requester"):
        return requester_name(item["requester"])
    return None


def event_person(entry: Mapping[str, Any], names: Names) -> str | None:
    """The person an entry is about, if any (for the "person" filter)."""
    ev = entry.get("event")
    if ev in ("request_submitted", "rpt_issued"):
        return party_words(entry.get("requester"), names) or _request_person(entry, names)
    if ev in ("request_approved", "request_approved_waiting", "request_denied_by_owner", "request_denied"):
        return _request_person(entry, names)
    if ev == "share_created":
        g = grantee_from_text(str(entry.get("grantee") or ""))
        return grantee_short(g, names) if g.get("kind") in ("person", "email", "class") else None
    if ev in ("share_revoked", "share_kept"):
        share = names.shares.get(str(entry.get("share_id")))
        if share and share["grantee"].get("kind") != "client":
            return grantee_short(share["grantee"], names)
    return None


def event_resources(entry: Mapping[str, Any], names: Names) -> list[str]:
    """The records an entry is about (for the "record" filter)."""
    perms = entry.get("permissions")
    if not perms and entry.get("event") in ("share_revoked", "share_kept"):
        perms = (names.shares.get(str(entry.get("share_id"))) or {}).get("permissions")
    if not perms and entry.get("event") in ("request_denied_by_owner", "request_denied", "request_approved_waiting"):
        perms = (names.requests.get(str(entry.get("inbox_id") or "")) or {}).get("permissions")
    out = [str(p.get("resource_name") or names.resource(str(p.get("resource_id")))) for p in perms or []]
    if entry.get("event") in ("resource_registered", "resource_updated", "resource_deleted"):
        out.append(str(entry.get("name") or names.resource(str(entry.get("resource_id")))))
    return list(dict.fromkeys(out))


def _client_of_connection(entry: Mapping[str, Any], names: Names) -> str:
    cid = entry.get("client_id") or names.connections.get(str(entry.get("connection_id")))
    return names.client(cid)


def event_sentence(entry: Mapping[str, Any], names: Names, tz: tzinfo | None = None) -> str:
    """One entry of the activity log as a sentence for people."""
    ev = str(entry.get("event"))
    client = names.client(entry.get("client_id")) if entry.get("client_id") else None
    what = permissions_words(entry.get("permissions") or [], names)
    if ev == "request_submitted":
        person = party_words(entry.get("requester"), names)
        who = f"{person} at {client}" if person else f"Someone using {client} (not verified)"
        text = f"{who} asked to {what}"
        return f"{text}, for {entry['purpose']}" if entry.get("purpose") else text
    if ev == "connect_requested":
        return f"{client} asked to connect to your records"
    you = _subject(entry, names)
    if ev in ("request_approved", "request_approved_waiting"):
        item = names.requests.get(str(entry.get("inbox_id"))) or {}
        if entry.get("kind") == "connect":
            app = names.client((item.get('client') or {}).get('client_id'))
            return f"{you} let {app} connect to {names.whose(entry.get('profile') or item.get('profile'))} records"
        who = _request_person(entry, names) or f"the app {names.client((item.get('client') or {}).get('client_id'))}"
        if ev == "request_approved_waiting":
            asked = permissions_words(item.get("permissions") or [], names)
            return f"{you} said yes to {who} ({asked}); the other guardian must agree too"
        until = lifetime_words({"expires_at": entry.get("expires_at"), "once": False}, float(entry.get("ts") or 0),
                               tz)
        return f"{you} shared with {who}: {what}, {until}"
    if ev == "request_denied_by_owner":
        item = names.requests.get(str(entry.get("inbox_id"))) or {}
        if entry.get("kind") == "connect":
            return f"{you} declined {names.client((item.get('client') or {}).get('client_id'))}'s request to connect"
        who = _request_person(entry, names) or f"the app {names.client((item.get('client') or {}).get('client_id'))}"
        asked = permissions_words(item.get("permissions") or [], names)
        text = f"{you} said no to {who} ({asked})"
        return f"{text} and will always say no to them for these records" if entry.get("remembered") else text
    if ev == "request_denied":
        return f"{client} was refused, as you had decided before"
    if ev == "share_created":
        who = grantee_words(grantee_from_text(str(entry.get("grantee") or "")), names)
        return f"{you} shared ahead of time with {who}: {what}"
    if ev in ("share_revoked", "share_kept"):
        share = names.shares.get(str(entry.get("share_id")))
        kept = ev == "share_kept"
        if not share:
            return f"{you} {'kept' if kept else 'stopped'} a sharing"
        who = grantee_short(share["grantee"], names)
        if kept:
            return f"{you} kept the sharing of {records_words(share['permissions'], names)} with {who}"
        verb = "stopped saying no to" if share.get("effect") == "deny" else "stopped sharing"
        return f"{you} {verb} {records_words(share['permissions'], names)} with {who}"
    if ev == "rpt_issued":
        person = party_words(entry.get("requester"), names)
        return f"{client} was given access to {what}" + (f" for {person}" if person else "")
    if ev == "rpt_refreshed":
        return f"{client} renewed the access it was given"
    if ev == "introspection":
        ok = "still allowed" if entry.get("active") else "no longer allowed"
        return f"{client} checked an access with your agent: {ok}"
    if ev == "pat_issued":
        return f"{client} is now connected to {_profile_records(entry, names)}"
    if ev == "pat_refreshed":
        return f"{client} renewed its connection"
    if ev in ("pat_revoked", "rs_disconnected"):
        who = _client_of_connection(entry, names)
        if ev == "rs_disconnected":
            return f"You disconnected {who}"
        reason = {"replaced": "a newer connection replaced it", "disconnected": "it was disconnected",
                  "revoked_by_client": "it ended the connection itself",
                  "refresh_token_reused": "a stolen key may have been used, so it was cut off for safety"}
        return f"{who}'s connection ended: {reason.get(str(entry.get('reason')), 'it ended')}"
    if ev == "grant_revoked":
        why = {"share_ended": "the sharing behind it ended",
               "share_revoked": "you stopped the sharing behind it",
               "refresh_token_reused": "a stolen key may have been used, so it was cut off for safety"}
        return f"An app's ongoing access ended: {why.get(str(entry.get('reason')), 'it ended')}"
    if ev == "token_revoked":
        return f"{client} gave back an access it had"
    if ev == "resource_registered":
        return f"{client} added “{entry.get('name') or 'a record'}” to {_profile_records(entry, names)}"
    if ev == "resource_updated":
        return f"{client} updated {names.resource(str(entry.get('resource_id')))}"
    if ev == "resource_deleted":
        return f"{client} removed a record"
    if ev == "client_registered":
        return f"The app {entry.get('client_name') or client} introduced itself to your agent"
    if ev == "client_updated":
        return f"The app {entry.get('client_name') or client} updated its details"
    if ev == "client_deleted":
        return f"The app {entry.get('client_name') or client} removed itself"
    if ev == "profile_added":
        kind = "a dependent's profile" if entry.get("dependent") else "a profile"
        return f"You added {kind}: {names.profile(entry.get('profile'))}"
    if ev == "profile_renamed":
        if entry.get("profile") in (None, "me"):
            return f"You changed your name to {entry.get('name')}"
        return f"You renamed a profile to {entry.get('name')}"
    if ev in ("guardianship_ended", "guardianship_ended_by_guardian", "guardianship_changed", "guardian_added",
              "guardian_removed", "profile_handed_over", "profile_imported"):
        return _guardianship_sentence(ev, entry, names, you)
    if ev == "guardian_decision_signed":
        verb = "said yes to" if entry.get("decision") == "approve" else "said no to"
        return f"As the other guardian, you {verb} a request waiting at {names.issuer(entry.get('for_agent'))}"
    if ev == "issuer_trusted":
        return f"You now trust {names.issuer(entry.get('issuer'))} to confirm who people are"
    if ev == "code_issued":
        return f"{client} got a one-time connection code"
    if ev == "code_reused":
        return "A connection code was used twice, so the connection made with it was cut off for safety"
    if ev == "signing_key_rotated":
        return "Your agent renewed its signing key"
    return capitalize(ev.replace("_", " "))


def _subject(entry: Mapping[str, Any], names: Names) -> str:
    """Who took the decision an entry records, as the sentence's subject: "You", or the other
    guardian's name (decided on their agent), or "Your guardian" (before a hand-over)."""
    by = entry.get("decided_by")
    if not isinstance(by, Mapping) or _decided_here(by, names):
        return "You"
    name = by.get("name") if by.get("name") != DEFAULT_OWNER_NAME else None
    if by.get("role") == "guardian" and entry.get("profile") in (None, "me"):
        return f"{name} (your guardian)" if name else "Your guardian"
    if by.get("role") == "guardian":
        return f"{name} (the other guardian)" if name else "The other guardian"
    return str(name or "Someone")


def _guardianship_sentence(ev: str, entry: Mapping[str, Any], names: Names, you: str) -> str:
    whom = names.profile(entry.get("profile"))
    if ev == "guardianship_ended":
        end = entry.get("ends_at")
        when = f" on {date_words(float(end), UTC)}" if end else ""
        text = f"Your guardianship for {whom} ended{when}; {whom} decides now"
        n = len(entry.get("shares_to_review") or ())
        if n:
            text += f". {n} sharing{'s' if n != 1 else ''} you made wait{'s' if n == 1 else ''} for {whom}'s review"
        return text
    if ev == "guardianship_ended_by_guardian":
        return f"{you} ended the guardianship for {whom}"
    if ev == "guardianship_changed":
        changes = []
        if entry.get("until"):
            changes.append(f"it now ends on {date_words(float(entry['until']), UTC)}")
        if entry.get("exclude"):
            changes.append(f"it keeps out {join_words(excluded_words(entry['exclude']))}")
        if entry.get("covers"):
            changes.append(f"it covers only {covers_words(entry['covers'])}")
        if entry.get("require") == "both":
            changes.append("both guardians must agree to share")
        elif entry.get("require") == "one":
            changes.append("one guardian's yes is enough")
        return f"{you} changed the guardianship for {whom}" + (f": {'; '.join(changes)}" if changes else "")
    if ev == "guardian_added":
        return f"{you} added {entry.get('name') or 'another guardian'} as the other guardian of {whom}"
    if ev == "guardian_removed":
        return f"{you} removed the other guardian of {whom}"
    if ev == "profile_handed_over":
        return f"{you} handed {whom}'s profile over to their own agent at {names.issuer(entry.get('to'))}"
    # profile_imported
    src = names.issuer(entry.get("from_issuer"))
    n = len(entry.get("shares_to_review") or ())
    text = f"You took over your records from your guardian's agent at {src}"
    return text + (f"; {n} sharing{'s' if n != 1 else ''} made for you wait{'s' if n == 1 else ''} for your review"
                   if n else "")


def _profile_records(entry: Mapping[str, Any], names: Names) -> str:
    pid = entry.get("profile")
    return "your records" if pid in (None, "me") else f"{names.profile(pid)}'s records"


def daily_access_counts(entries: Iterable[Mapping[str, Any]], now: float, days: int = 14,
                        tz: tzinfo | None = None) -> list[tuple[date, int]]:
    """How many times records were accessed (access given or checked) on each of the last ``days`` days,
    oldest first, today last."""
    def day_of(ts: float) -> date:
        return (datetime.fromtimestamp(ts, tz) if tz else datetime.fromtimestamp(ts).astimezone()).date()

    today = day_of(now)
    counts = Counter(day_of(float(e.get("ts") or 0)) for e in entries if e.get("event") in ACCESS_EVENTS)
    return [(d, counts.get(d, 0)) for d in (today - timedelta(days=n) for n in range(days - 1, -1, -1))]


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# the other guardian's say (docs/guardians.md "A second guardian") ----------------------------------
def approval_words(by: Mapping[str, Any] | None, names: Names) -> str:
    """One guardian's yes on a request that needs both: "You said yes", "Ben said yes on their own agent"."""
    if not by or _decided_here(by, names):
        return "You said yes"
    name = by.get("name") if by.get("name") != DEFAULT_OWNER_NAME else None
    return f"{name or 'The other guardian'} said yes on their own agent"


def waiting_words(waiting_for: Sequence[str], me: str | None) -> str:
    """Whose yes a request still needs when both guardians must agree (``me``: this agent's owner):
    "Needs your yes and Ben's: both guardians must agree", "Waiting for Ben's yes too: …"."""
    others = [f"{w}'s" for w in waiting_for if w != me]
    if me is not None and me in waiting_for:
        return f"Needs {join_words(['your yes', *others])}: both guardians must agree"
    whose = join_words(others) or "the other guardian's"
    return f"Waiting for {whose} yes too: both guardians must agree"


def _host(url: Any) -> str:
    return re.sub(r"^https?://", "", str(url or "")).rstrip("/") or "another agent"


def asked_by_words(request: Mapping[str, Any]) -> str:
    """Where a decision request comes from, as its signature shows (``guardian.read_decision_request``):
    "Signed by the agent at anna.example (id AbCdEf123456…), which holds Mia's records"."""
    whose = f"{request['profile_name']}'s records" if request.get("profile_name") else "these records"
    agent_id = str(request.get("iss") or "")
    return f"Signed by the agent at {_host(request.get('issuer'))}" + (
        f" (id {agent_id[:12]}…)" if agent_id else "") + f", which holds {whose}"


def asked_approvals_words(request: Mapping[str, Any]) -> list[str]:
    """Who has said yes already, as the request tells: "Anna said yes: they may see"."""
    lines = []
    for a in request.get("approvals") or ():
        name = a.get("name") if a.get("name") not in (None, DEFAULT_OWNER_NAME) else "The other guardian"
        scopes = a.get("scopes")
        lines.append(f"{name} said yes" + (f": they may {join_words(scope_words(s) for s in scopes)}"
                                          if scopes else ""))
    return lines


def require_words(require: str | None) -> str:
    """The rule a request is decided under, for the guardian asked."""
    if require == "both":
        return "Both guardians must say yes to share; one no refuses it"
    return "One guardian's yes is enough to share; one no refuses it"


def answer_by_words(request: Mapping[str, Any], tz: tzinfo | None = None) -> str:
    exp = request.get("exp")
    return f"Answer by {date_words(float(exp), tz)}" if isinstance(exp, int | float) else "Answer soon"


def asked_person(request: Mapping[str, Any]) -> str:
    """The short name of who asks, for labels: "Dr. Ann Lee", or "someone using Riverside Clinic EHR"."""
    if request.get("requester"):
        return requester_name(request["requester"])
    client = request.get("client") or {}
    return f"someone using {client.get('client_name') or 'an app'}"


def signed_answer_words(done: Mapping[str, Any]) -> str:
    """After the other guardian decided (``Owner.sign_decision``): what they said, to whom."""
    request = done.get("request") or {}
    said = "yes" if done.get("approve") else "no"
    whose = f" for {request['profile_name']}'s records" if request.get("profile_name") else ""
    return f"You said {said} to {asked_person(request)}{whose}."


def send_back_words(done: Mapping[str, Any]) -> str:
    request = done.get("request") or {}
    return ("Send this file back to the guardian who asked you, and only to them (a message or an e-mail). "
            f"It counts only on their agent at {_host(request.get('issuer'))}, and only for this request.")


def applied_words(result: Mapping[str, Any], me: str | None) -> str:
    """After the other guardian's answer was applied (``Owner.accept_decision``): what it did."""
    item = result.get("item") or {}
    status = item.get("status")
    approvals = item.get("approvals") or []
    by = item.get("decided_by") if status != "pending" else (approvals[-1].get("by") if approvals else None)
    name = (by or {}).get("name") or "The other guardian"
    who = asked_person(item)
    if status == "denied":
        return f"{name} said no: {who} is refused."
    share = result.get("share")
    if share:
        return f"{name} said yes: {records_words(share.get('permissions') or [])} now shared with {who}."
    waiting = [("your yes" if w == me else f"{w}'s") for w in item.get("waiting_for") or ()]
    return f"{name} said yes; it still needs {join_words(waiting) or 'another yes'}."
