"""``consent-agent``: the command line (DESIGN: "Owner surface: CLI contract").

``serve`` runs the agent (:mod:`app.runtime`). Every other command is one owner-API call: find the
running agent through ``DIR/agent.json``, send the owner token from ``DIR/owner.token``, and print
the answer as text for a person or, with ``--json``, exactly as the API returned it. Any failure
is one line on stderr and a non-zero exit status (1; 2 for a malformed command line).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlsplit

import httpx

from app import restore as restore_cmd
from app import runtime
from core.config import is_loopback_host
from core.errors import OwnerError
from core.owner_api import parse_until

TIMEOUT = 10.0


class CliError(Exception):
    """A one-line reason to stop."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """argparse prints usage plus the message; the contract asks for one line."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$CONSENT_AGENT_HOME``, else ``$XDG_DATA_HOME/consent-agent``, else
    ``~/.local/share/consent-agent``."""
    if env.get("CONSENT_AGENT_HOME"):
        return Path(env["CONSENT_AGENT_HOME"]).expanduser()
    xdg = env.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "consent-agent"


# --- talking to the running agent -----------------------------------------------------------------


@dataclass(frozen=True)
class ApiCall:
    method: str
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    data: Any
    text: str


def start_hint(data_dir: Path) -> str:
    extra = "" if data_dir == default_data_dir() else f" --data-dir {data_dir}"
    return f"start it with: consent-agent serve{extra}"


def find_agent(data_dir: Path) -> tuple[str, str]:
    """The owner API URL from ``agent.json`` and the owner token; only a loopback URL is trusted
    with the token."""
    info_path, token_path = data_dir / "agent.json", data_dir / "owner.token"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"consent-agent is not running (no {info_path}); {start_hint(data_dir)}") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {info_path}: {exc}") from None
    url = info.get("owner_api") if isinstance(info, dict) else None
    if not isinstance(url, str) or not url.startswith("http://") or not is_loopback_host(host_of(url)):
        raise CliError(f"{info_path} names no loopback owner_api URL")
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CliError(f"cannot read the owner token {token_path}: {exc.strerror or exc}") from None
    return url, token


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def call_agent(data_dir: Path, call: ApiCall) -> Answer:
    url, token = find_agent(data_dir)
    try:
        # trust_env=False: the owner token must never go to a proxy named in the environment
        with httpx.Client(base_url=url, timeout=TIMEOUT, trust_env=False) as client:
            response = client.request(call.method, call.path, json=call.body, params=call.query or None,
                                      headers={"authorization": f"Bearer {token}"})
    except httpx.ConnectError:
        raise CliError(f"consent-agent is not running (connection refused at {url}); "
                       f"{start_hint(data_dir)}") from None
    except httpx.TimeoutException:
        raise CliError(f"consent-agent at {url} did not answer within {TIMEOUT:.0f} s") from None
    except httpx.HTTPError as exc:
        raise CliError(f"cannot talk to consent-agent at {url}: {exc}") from None
    except UnicodeEncodeError:  # bytes that are not UTF-8 on the command line or in the environment
        raise CliError("an argument is not valid UTF-8 text") from None
    try:
        data = response.json()
    except ValueError:
        raise CliError(f"consent-agent answered {response.status_code} without JSON") from None
    if response.status_code == 401:
        raise CliError(f"the agent refused the owner token in {data_dir / 'owner.token'}")
    if response.status_code >= 400:
        message = data.get("message") or data.get("error") if isinstance(data, dict) else None
        raise CliError(str(message or f"the agent answered {response.status_code}"))
    return Answer(data, response.text)


# --- the commands: what to ask, how to show the answer --------------------------------------------


def lifetime(ns: argparse.Namespace) -> dict[str, Any]:
    return {"once": ns.once, "days": ns.days, "until": ns.until}


REQUESTS: dict[str, Callable[[argparse.Namespace], ApiCall]] = {
    "status": lambda ns: ApiCall("GET", "/v1/status"),
    "inbox": lambda ns: ApiCall("GET", "/v1/inbox"),
    "approve": lambda ns: ApiCall("POST", f"/v1/inbox/{quote(ns.id, safe='')}/approve",
                                  {"scopes": ns.scopes, "profile": ns.profile, **lifetime(ns)}),
    "deny": lambda ns: ApiCall("POST", f"/v1/inbox/{quote(ns.id, safe='')}/deny", {"remember": ns.remember}),
    "share": lambda ns: ApiCall("POST", "/v1/shares", {
        "profile": ns.profile, "resource_id": ns.resource, "scopes": ns.scopes, "with": ns.grantee,
        "purpose": ns.purpose, "name": ns.name, **lifetime(ns)}),
    "shares": lambda ns: ApiCall("GET", "/v1/shares", query={"all": "true"} if ns.all else {}),
    "revoke": lambda ns: ApiCall("POST", f"/v1/shares/{quote(ns.id, safe='')}/revoke", {}),
    "profiles": lambda ns: ApiCall("GET", "/v1/profiles"),
    "profiles add": lambda ns: ApiCall("POST", "/v1/profiles", {
        "name": ns.name, "dependent": ns.dependent, "until": ns.until, "exclude": ns.exclude,
        "covers": ns.covers}),
    "profiles show": lambda ns: ApiCall("GET", f"/v1/profiles/{q(ns.id)}"),
    "profiles rename": lambda ns: ApiCall("POST", f"/v1/profiles/{q(ns.id)}/rename", {"name": ns.name}),
    "profiles change": lambda ns: ApiCall("POST", f"/v1/profiles/{q(ns.id)}/guardianship", {
        "until": ns.until, "exclude": ns.exclude or None, "covers": ns.covers, "require": ns.require}),
    "profiles end": lambda ns: ApiCall("POST", f"/v1/profiles/{q(ns.id)}/end", {}),
    "profiles handover": lambda ns: handover_call(ns),
    "profiles import": lambda ns: import_call(ns),
    "profiles review": lambda ns: ApiCall("GET", "/v1/shares/review", query={"profile": ns.id} if ns.id else {}),
    "profiles keep": lambda ns: ApiCall("POST", f"/v1/shares/{q(ns.id)}/keep", {}),
    "profiles co-guardian": lambda ns: ApiCall("POST", f"/v1/profiles/{q(ns.id)}/guardians", {
        "name": ns.name, "agent_id": ns.agent_id, "issuer": ns.issuer, "require": "both" if ns.both else None}),
    "profiles ask": lambda ns: ApiCall("POST", f"/v1/inbox/{q(ns.id)}/decision-request", {}),
    "profiles decide": lambda ns: ApiCall("POST", "/v1/decisions/sign", {
        "request": read_text(ns.file, "the decision request"), "approve": ns.approve, "scopes": ns.scopes,
        **lifetime(ns)}),
    "profiles accept": lambda ns: ApiCall("POST", "/v1/decisions", {
        "decision": read_text(ns.file, "the decision")}),
    "trust add": lambda ns: ApiCall("POST", "/v1/trust", {
        "issuer": ns.issuer, "jwks": read_jwks(ns.jwks_file) if ns.jwks_file else None,
        "jwks_uri": ns.jwks_uri, "name": ns.name}),
    "trust list": lambda ns: ApiCall("GET", "/v1/trust"),
    "audit": lambda ns: ApiCall("GET", "/v1/audit", query={"limit": str(ns.limit)}),
}


def q(value: str) -> str:
    return quote(value, safe="")


# --- profiles: guardianship and hand-over ---------------------------------------------------------

BUNDLE_PASSPHRASE_ENV = "CONSENT_AGENT_BUNDLE_PASSPHRASE"


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} from {path}: {getattr(exc, 'strerror', None) or exc}") from None


def bundle_passphrase(ns: argparse.Namespace, *, confirm: bool, env: Mapping[str, str] = os.environ) -> str:
    """``--passphrase-file F``, else ``$CONSENT_AGENT_BUNDLE_PASSPHRASE``, else asked on a terminal."""
    if ns.passphrase_file is not None:
        try:
            return str(ns.passphrase_file.read_text(encoding="utf-8")).removesuffix("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {ns.passphrase_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if env.get(BUNDLE_PASSPHRASE_ENV):
        return env[BUNDLE_PASSPHRASE_ENV]
    if sys.stdin.isatty():
        first = getpass.getpass("Bundle passphrase: ")
        if confirm and getpass.getpass("The same passphrase again: ") != first:
            raise CliError("the two passphrases differ")
        return first
    raise CliError(f"give the bundle's passphrase with --passphrase-file F or {BUNDLE_PASSPHRASE_ENV}")


def bundle_path(ns: argparse.Namespace) -> Path:
    return Path(ns.out) if ns.out else Path(f"{re.sub(r'[^A-Za-z0-9_-]+', '-', ns.id)}.handover.json")


def handover_call(ns: argparse.Namespace) -> ApiCall:
    out = bundle_path(ns)
    if out.exists():
        raise CliError(f"{out} exists already; choose another file with --out")
    return ApiCall("POST", f"/v1/profiles/{q(ns.id)}/handover",
                   {"to": ns.to, "passphrase": bundle_passphrase(ns, confirm=True)})


def import_call(ns: argparse.Namespace) -> ApiCall:
    return ApiCall("POST", "/v1/profiles/import", {"bundle": read_text(ns.file, "the bundle"),
                                                   "passphrase": bundle_passphrase(ns, confirm=False)})


def save_bundle(answer: Answer, ns: argparse.Namespace) -> Answer:
    """Write the bundle the agent made (mode 0600, never over a file); answer without it."""
    out = bundle_path(ns)
    data = dict(answer.data)
    bundle = str(data.pop("bundle", ""))
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(bundle)
    except OSError as exc:
        raise CliError(f"the profile was handed over, but {out} could not be written ({exc.strerror or exc}); "
                       "run consent-agent profiles handover again for a new bundle") from None
    data["file"] = str(out)
    return Answer(data, json.dumps(data, indent=2))


def save_token(member: str) -> Callable[[Answer, argparse.Namespace], Answer]:
    """Write a signed decision (request) to ``--out`` when given."""
    def save(answer: Answer, ns: argparse.Namespace) -> Answer:
        if ns.out:
            try:
                fd = os.open(ns.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(str(answer.data[member]) + "\n")
            except OSError as exc:
                raise CliError(f"cannot write {ns.out}: {exc.strerror or exc}") from None
        return answer
    return save


AFTER: dict[str, Callable[[Answer, argparse.Namespace], Answer]] = {
    "profiles handover": save_bundle,
    "profiles ask": save_token("request"),
    "profiles decide": save_token("decision"),
}


def guardianship_words(p: Mapping[str, Any]) -> str:
    if p.get("status") == "handed_over":
        return f"handed over to {p.get('moved_to')}"
    g = p.get("guardianship")
    if not g:
        return {"owner": "you", "person": "you act for them"}.get(str(p.get("kind")), "-")
    if g.get("status") == "ended":
        return f"guardianship ended {when(g.get('ends_at'))}"
    return "you are guardian" + (f" until {when(g.get('ends_at'))}" if g.get("ends_at") else "")


def show_profile(p: Any, ns: argparse.Namespace) -> str:
    g = p.get("guardianship") or {}
    lines = [f"{p.get('name')} (id {p.get('id')}, {p.get('kind')}): {guardianship_words(p)}"]
    if g:
        lines.append(f"  {g.get('message')}")
        lines.append(f"  covers:     {', '.join(g.get('covers') or []) or '-'}")
        excluded = [f"{x['code']}" + (f" ({x['words']})" if x.get("words") else "") for x in g.get("exclude") or []]
        lines.append(f"  excluded:   {', '.join(excluded) or 'nothing'}")
        lines.append("  guardians:  " + ", ".join(x.get("name") or x.get("id") for x in g.get("guardians") or [])
                     + (" (both must approve)" if g.get("require") == "both" else ""))
    if "resources" in p:
        lines.append(f"  holds:      {p.get('resources')} resources, {p.get('shares_active')} active shares, "
                     f"{p.get('pending')} requests waiting")
    review = p.get("shares_to_review") or []
    if review:
        lines.append(f"  to review:  {len(review)} shares made by a guardian: consent-agent profiles review")
    return "\n".join(lines)


def show_handover(r: Any, ns: argparse.Namespace) -> str:
    return (f"Handed {r.get('name')} over to {r.get('to')}: this agent no longer answers for the profile.\n"
            f"Bundle: {r.get('file')} ({r.get('resources')} resources, {r.get('shares')} shares, "
            f"{r.get('log')} log entries)\n{r.get('next')}")


def show_import(r: Any, ns: argparse.Namespace) -> str:
    src = r.get("from") or {}
    lines = [f"Imported the profile of {r.get('name')} from {src.get('issuer')} (agent {src.get('agent_id')}, "
             f"guardian {src.get('guardian')}): {r.get('resources')} resources, {r.get('shares')} shares."]
    if r.get("reconnect"):
        lines.append(f"{len(r['reconnect'])} record source(s) will ask to reconnect: approve them in the inbox.")
    if r.get("shares_to_review"):
        lines.append(f"{len(r['shares_to_review'])} share(s) your guardian made wait for you to keep or stop them: "
                     "consent-agent profiles review")
    return "\n".join(lines)


def show_decide(r: Any, ns: argparse.Namespace) -> str:
    asked = r.get("request") or {}
    return (f"{'Approved' if r.get('approve') else 'Denied'} request {asked.get('item')} for "
            f"{asked.get('profile_name')} at {asked.get('issuer')}. Send the decision back to be applied there "
            "(consent-agent profiles accept FILE)" + (f"; saved to {ns.out}" if ns.out else f":\n{r.get('decision')}"))


def review_table(shares: Any, ns: argparse.Namespace) -> str:
    return table(("ID", "WHAT", "WITH", "MADE BY", "STOPS UNLESS KEPT"),
                 [(s.get("id"), what(s.get("permissions") or []), s.get("grantee_text"),
                   (s.get("decided_by") or {}).get("name"), when(s.get("review_due"))) for s in shares],
                 "No shares wait for a review.")


def read_jwks(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read a JWK Set from {path}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} does not hold a JWK Set (a JSON object with keys)")
    return data


# --- showing answers to a person ------------------------------------------------------------------


def when(ts: Any) -> str:
    return "-" if ts is None else datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M UTC")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return empty
    cells = [list(headers), *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)


def what(permissions: Sequence[Mapping[str, Any]]) -> str:
    return " and ".join(f"{', '.join(p.get('scopes') or [])} on "
                        f"{p.get('resource_name') or p.get('resource_id')}" for p in permissions)


def ends(share: Mapping[str, Any]) -> str:
    if share.get("once"):
        return "just this once"
    return f"until {when(share['expires_at'])}" if share.get("expires_at") else "until revoked"


def share_line(s: Mapping[str, Any]) -> str:
    verb = "denied" if s.get("effect") == "deny" else "shared"
    name = (s.get("grantee") or {}).get("name")
    whom = f"{name} ({s.get('grantee_text')})" if name else s.get("grantee_text")
    return f"{verb} {what(s.get('permissions') or [])} with {whom} {ends(s)}"


def who(requester: Mapping[str, Any] | None) -> str:
    if not requester:
        return "not identified (no verified claims)"
    label = requester.get("name") or requester.get("email") or requester.get("subject")
    if requester.get("name") and requester.get("email"):
        label = f"{label} <{requester['email']}>"
    proof = "verified by" if requester.get("verified") else "NOT verified, claimed via"
    return f"{label}, {proof} {requester.get('issuer')}"


def inbox_item(i: Mapping[str, Any]) -> str:
    client = i.get("client") or {}
    lines = [f"Request {i['id']} ({i.get('kind')} request for profile {i.get('profile')}, "
             f"{when(i.get('created_at'))})",
             f"  client:     {client.get('client_name') or '-'} ({client.get('client_id')})"]
    if i.get("kind") == "access":
        lines += [f"  who:        {who(i.get('requester'))}",
                  f"  wants:      {what(i.get('permissions') or [])}"]
    else:
        lines.append(f"  wants:      to connect (scope: {i.get('scope') or '-'})")
        if i.get("match_code"):
            lines.append(f"  match code: {i['match_code']}  (check the other screen shows the same code)")
        if i.get("user_code"):
            lines.append(f"  user code:  {i['user_code']}  (check the device shows the same code)")
    if i.get("purpose"):
        lines.append(f"  purpose:    {i['purpose']}")
    lines.append(f"  decide:     consent-agent approve {i['id']}   |   consent-agent deny {i['id']}")
    return "\n".join(lines)


def show_status(s: Any, ns: argparse.Namespace) -> str:
    lines = [f"consent-agent is running as {s.get('issuer')}", f"  agent id:       {s.get('agent_id')}",
             f"  keys:           {s.get('key_protection')}",
             f"  inbox:          {s.get('pending')} waiting for a decision",
             f"  shares:         {s.get('shares_active')} active",
             f"  profiles {s.get('profiles')}, clients {s.get('clients')}, resources {s.get('resources')}",
             f"  activity log:   {'intact' if s.get('audit_ok') else 'DAMAGED (fails its hash check)'}"]
    notices = [f"NOTICE: {n.get('message')}" for n in s.get("notices") or [] if isinstance(n, dict)]
    return "\n".join(lines + [f"WARNING: {w}" for w in s.get("warnings") or []] + notices)


def show_audit(entries: Any, ns: argparse.Namespace) -> str:
    def detail(e: Mapping[str, Any]) -> str:
        return " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in e.items()
                        if k not in ("seq", "ts", "event", "prev", "hash") and v is not None)
    return "\n".join(f"{when(e.get('ts'))}  {e.get('event')}  {detail(e)}".rstrip()
                     for e in entries) or "The activity log is empty."


RENDERERS: dict[str, Callable[[Any, argparse.Namespace], str]] = {
    "status": show_status,
    "inbox": lambda items, ns: "\n\n".join(map(inbox_item, items)) or "No requests waiting.",
    "approve": lambda r, ns: f"Approved {ns.id}: " + (share_line(r["share"]) if r.get("share") else
                                                      f"{(r['item'].get('client') or {}).get('client_name')} "
                                                      "may connect"),
    "deny": lambda r, ns: f"Denied {ns.id}" + ("; such requests will be denied from now on"
                                               if ns.remember else ""),
    "share": lambda s, ns: f"Share {s.get('id')}: {share_line(s)}",
    "shares": lambda shares, ns: table(
        ("ID", "PROFILE", "WHAT", "WITH", "ENDS", "STATE"),
        [(s.get("id"), s.get("profile"), what(s.get("permissions") or []), s.get("grantee_text"), ends(s),
          "active" if s.get("active") else "revoked" if s.get("revoked_at") else "ended") for s in shares],
        "No shares."),
    "revoke": lambda s, ns: f"Revoked share {s.get('id', ns.id)}: it no longer backs any token",
    "profiles": lambda profiles, ns: table(
        ("ID", "NAME", "KIND", "UNTIL", "EXCLUDES", "STATUS"),
        [(p.get("id"), p.get("name"), p.get("kind"), when(p.get("until")), ", ".join(p.get("exclude") or []),
          guardianship_words(p)) for p in profiles], "No profiles."),
    "profiles add": lambda p, ns: f"Added profile {p.get('name')} (id {p.get('id')}, {p.get('kind')})"
                                  + (f": {guardianship_words(p)}" if p.get("guardianship") else ""),
    "profiles show": show_profile,
    "profiles rename": lambda p, ns: f"Profile {p.get('id')} is now called {p.get('name')}",
    "profiles change": show_profile,
    "profiles end": lambda p, ns: show_profile(p, ns),
    "profiles handover": show_handover,
    "profiles import": show_import,
    "profiles review": review_table,
    "profiles keep": lambda s, ns: f"Kept share {s.get('id')}: {share_line(s)}",
    "profiles co-guardian": show_profile,
    "profiles ask": lambda r, ns: (f"Ask {' and '.join(r.get('for') or [])} to decide on their own agent: "
                                   "consent-agent profiles decide FILE --approve (or --deny), with this request"
                                   + (f" (saved to {ns.out})" if ns.out else f":\n{r.get('request')}")),
    "profiles decide": show_decide,
    "profiles accept": lambda r, ns: (f"Accepted the other guardian's decision on {r['item'].get('id')}: "
                                      + (share_line(r["share"]) if r.get("share") else
                                         r["item"].get("status") if r["item"].get("status") != "pending"
                                         else "waiting for " + ", ".join(r["item"].get("waiting_for") or []))),
    "trust add": lambda t, ns: f"Trusting ID tokens from {t.get('issuer')} ({t.get('name')})",
    "trust list": lambda ts, ns: table(
        ("ISSUER", "NAME", "KEYS", "JWKS URI"),
        [(t.get("issuer"), t.get("name"), t.get("keys"), t.get("jwks_uri")) for t in ts],
        "No trusted issuers."),
    "audit": show_audit,
}


# --- the command line -----------------------------------------------------------------------------


def scopes_arg(text: str) -> list[str]:
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    if not scopes:
        raise argparse.ArgumentTypeError("give scopes as a,b")
    return scopes


def days_arg(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = 0.0
    if not 0 < days <= 36_500:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of days")
    return days


def until_arg(text: str) -> str:
    """Checked here so a typo fails before the agent is asked; the agent parses it again."""
    try:
        parse_until(text)
    except OwnerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def add_lifetime(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--once", action="store_true", help="just this once")
    group.add_argument("--days", type=days_arg, metavar="N", help="for N days")
    group.add_argument("--until", type=until_arg, metavar="DATE", help="until an ISO 8601 date or date-time")


def build_parser() -> Parser:
    common = Parser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    top = Parser(prog="consent-agent", parents=[common],
                 description="A personal UMA 2.0 authorization server: you decide, on your own device.")
    cmds = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, helptext: str, under: Any = cmds, key: str | None = None) -> Parser:
        p: Parser = under.add_parser(name, parents=[common], help=helptext, description=helptext)
        p.set_defaults(key=key or name)
        return p

    serve = cmds.add_parser("serve", help="run the agent", description="Run the agent.")
    serve.set_defaults(key="serve")
    serve.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR")
    runtime.add_serve_arguments(serve)
    restore = cmds.add_parser("restore", help="become this agent on a new device, from a key backup",
                              description="Restore an encrypted key backup into a data dir that has no keys yet.")
    restore.set_defaults(key="restore")
    restore.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, metavar="DIR")
    restore_cmd.add_arguments(restore)
    demo = cmds.add_parser("demo", help="play the surgery story end to end, through a real relay",
                           description="Start a relay, a throw-away agent with its app, and a records server, "
                                       "then play Alice's surgery story; Dr. Bob's request waits for you to "
                                       "press Share in the app (or use --auto).")
    demo.set_defaults(key="demo")
    demo.add_argument("--auto", action="store_true", help="press Share from the script (for CI) and exit at the end")
    demo.add_argument("--ui", choices=("desktop", "web", "none"),
                      help="the app (default: a window or the web UI; none with --auto)")
    demo.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                      help="keep the demo's agent here (default: a temporary folder, removed at the end)")

    command("status", "show how the agent is doing")
    command("inbox", "list the requests waiting for a decision")
    p = command("approve", "approve a request from the inbox")
    p.add_argument("id", metavar="ID")
    p.add_argument("--scopes", type=scopes_arg, metavar="a,b", help="approve only these scopes")
    add_lifetime(p)
    p.add_argument("--profile", metavar="P")
    p = command("deny", "deny a request from the inbox")
    p.add_argument("id", metavar="ID")
    p.add_argument("--remember", action="store_true", help="deny such requests from now on")
    p = command("share", "share a resource ahead of time")
    p.add_argument("--profile", required=True, metavar="P")
    p.add_argument("--resource", required=True, metavar="RID")
    p.add_argument("--scopes", required=True, type=scopes_arg, metavar="a,b")
    p.add_argument("--with", required=True, dest="grantee", metavar="GRANTEE",
                   help="email:ADDRESS, sub:ISSUER#SUBJECT, client:CLIENT_ID or class:ISSUER#CLAIM=VALUE")
    add_lifetime(p)
    p.add_argument("--purpose", metavar="TEXT")
    p.add_argument("--name", metavar="TEXT", help="how you know them (shown in the app and here)")
    command("shares", "list shares").add_argument("--all", action="store_true", help="include ended shares")
    command("revoke", "revoke a share").add_argument("id", metavar="SHARE_ID")
    add_profile_commands(command("profiles", "list profiles, add one, guardianship and hand-over"), command)
    trust = command("trust", "manage trusted identity providers").add_subparsers(
        dest="sub", metavar="{add,list}", required=True, parser_class=Parser)
    p = command("add", "trust an issuer's ID tokens", trust, "trust add")
    p.add_argument("issuer", metavar="ISSUER")
    keys = p.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks-file", type=Path, metavar="F")
    keys.add_argument("--jwks-uri", metavar="URL")
    p.add_argument("--name", metavar="N")
    command("list", "list trusted issuers", trust, "trust list")
    audit = command("audit", "show the activity log")
    audit.add_argument("--limit", type=positive_int, default=50, metavar="N")
    return top


def add_profile_commands(profiles: Parser, command: Callable[..., Parser]) -> None:
    """``profiles add|show|rename|change|end|handover|import|review|keep`` and the co-guardian exchange."""
    sub = profiles.add_subparsers(metavar="{add,show,rename,change,end,handover,import,review,keep,co-guardian,"
                                          "ask,decide,accept}", parser_class=Parser)

    def cmd(name: str, helptext: str) -> Parser:
        return command(name, helptext, sub, f"profiles {name}")

    p = cmd("add", "add a profile")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--dependent", action="store_true", help="a dependent, in your care as guardian")
    p.add_argument("--until", type=until_arg, metavar="DATE", help="guardianship ends at this date")
    p.add_argument("--exclude", action="append", default=[], metavar="CODE",
                   help="keep resources labelled with this sensitivity code out of reach (repeatable)")
    p.add_argument("--covers", type=scopes_arg, metavar="a,b",
                   help="the decisions the guardianship covers (approve,deny,share,revoke,connect; default all)")
    cmd("show", "show a profile and its guardianship").add_argument("id", metavar="ID")
    p = cmd("rename", "rename a profile (yours too: guardians' decisions show your name)")
    p.add_argument("id", metavar="ID")
    p.add_argument("name", metavar="NAME")
    p = cmd("change", "narrow a guardianship: an earlier end, more exclusions, fewer decisions, one or both")
    p.add_argument("id", metavar="ID")
    p.add_argument("--until", type=until_arg, metavar="DATE", help="end earlier, at this date")
    p.add_argument("--exclude", action="append", default=[], metavar="CODE", help="exclude one more code")
    p.add_argument("--covers", type=scopes_arg, metavar="a,b", help="cover only these decisions")
    p.add_argument("--require", choices=("one", "both"), help="one guardian's approval, or both")
    cmd("end", "end a guardianship now").add_argument("id", metavar="ID")
    p = cmd("handover", "hand a profile over to the person's own agent (writes an encrypted bundle)")
    p.add_argument("id", metavar="ID")
    p.add_argument("--to", required=True, metavar="ISSUER", help="the issuer of the person's own agent")
    p.add_argument("--out", type=Path, metavar="FILE", help="where to write the bundle (default ID.handover.json)")
    p.add_argument("--passphrase-file", type=Path, metavar="F", help=f"else ${BUNDLE_PASSPHRASE_ENV}, or asked")
    p = cmd("import", "take over a profile handed over to you")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--passphrase-file", type=Path, metavar="F", help=f"else ${BUNDLE_PASSPHRASE_ENV}, or asked")
    cmd("review", "list shares a guardian made that wait for your review").add_argument(
        "id", nargs="?", metavar="PROFILE")
    cmd("keep", "keep a share under review").add_argument("id", metavar="SHARE_ID")
    p = cmd("co-guardian", "add the other guardian, who decides on their own agent")
    p.add_argument("id", metavar="ID")
    p.add_argument("--name", required=True, metavar="N")
    p.add_argument("--agent-id", required=True, metavar="AGENT_ID", help="their agent's id (consent-agent status)")
    p.add_argument("--issuer", metavar="URL", help="their agent's issuer, shown with their decisions")
    p.add_argument("--both", action="store_true", help="from now on both guardians must approve")
    p = cmd("ask", "sign a request for the other guardian to decide")
    p.add_argument("id", metavar="REQUEST_ID")
    p.add_argument("--out", type=Path, metavar="FILE")
    p = cmd("decide", "as the other guardian: sign your decision on a request")
    p.add_argument("file", type=Path, metavar="FILE", help="the signed request")
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", action="store_true")
    choice.add_argument("--deny", action="store_true")
    p.add_argument("--scopes", type=scopes_arg, metavar="a,b", help="approve only these scopes")
    add_lifetime(p)
    p.add_argument("--out", type=Path, metavar="FILE")
    cmd("accept", "apply the other guardian's signed decision").add_argument("file", type=Path, metavar="FILE")


def printable(text: str) -> str:
    """Names and purposes come from clients and requesters: control and bidi characters are
    replaced so they cannot rewrite the owner's terminal (escape sequences) or reorder a line."""
    return "".join(c if c == "\n" or c.isprintable() else "?" for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    ns = parser.parse_args(args)
    if getattr(ns, "key", None) is None:  # no command: serve with the default UI choice
        ns = parser.parse_args(["serve", *args])
    data_dir = Path(getattr(ns, "data_dir", None) or default_data_dir())
    if ns.key == "serve":
        return runtime.serve(runtime.options_from(ns, data_dir))
    if ns.key == "restore":
        return restore_cmd.restore(ns, data_dir)
    if ns.key == "demo":
        from app.demo.story import DemoOptions, run

        return run(DemoOptions(auto=ns.auto, ui=ns.ui or ("none" if ns.auto else None), data_dir=ns.data_dir))
    try:
        answer = call_agent(data_dir, REQUESTS[ns.key](ns))
        answer = AFTER[ns.key](answer, ns) if ns.key in AFTER else answer
        print(answer.text if getattr(ns, "json", False) else printable(RENDERERS[ns.key](answer.data, ns)))
    except CliError as exc:
        reason = printable(" ".join(str(exc).split()))
        print(reason if reason.startswith("consent-agent ") else f"consent-agent: {reason}", file=sys.stderr)
        return 1
    return 0
