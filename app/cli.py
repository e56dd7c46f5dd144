"""``consent-agent``: the command line (DESIGN: "Owner surface: CLI contract").

``serve`` runs the agent (:mod:`app.runtime`). Every other command is one owner-API call: find the
running agent through ``DIR/agent.json``, send the owner token from ``DIR/owner.token``, and print
the answer as text for a person or, with ``--json``, exactly as the API returned it. Any failure
is one line on stderr and a non-zero exit status (1; 2 for a malformed command line).
"""

from __future__ import annotations

import argparse
import json
import os
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
        "purpose": ns.purpose, **lifetime(ns)}),
    "shares": lambda ns: ApiCall("GET", "/v1/shares", query={"all": "true"} if ns.all else {}),
    "revoke": lambda ns: ApiCall("POST", f"/v1/shares/{quote(ns.id, safe='')}/revoke", {}),
    "profiles": lambda ns: ApiCall("GET", "/v1/profiles"),
    "profiles add": lambda ns: ApiCall("POST", "/v1/profiles", {
        "name": ns.name, "dependent": ns.dependent, "until": ns.until, "exclude": ns.exclude}),
    "trust add": lambda ns: ApiCall("POST", "/v1/trust", {
        "issuer": ns.issuer, "jwks": read_jwks(ns.jwks_file) if ns.jwks_file else None,
        "jwks_uri": ns.jwks_uri, "name": ns.name}),
    "trust list": lambda ns: ApiCall("GET", "/v1/trust"),
    "audit": lambda ns: ApiCall("GET", "/v1/audit", query={"limit": str(ns.limit)}),
}


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
    return f"{verb} {what(s.get('permissions') or [])} with {s.get('grantee_text')} {ends(s)}"


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
    return "\n".join(lines + [f"WARNING: {w}" for w in s.get("warnings") or []])


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
        ("ID", "NAME", "KIND", "UNTIL", "EXCLUDES"),
        [(p.get("id"), p.get("name"), p.get("kind"), when(p.get("until")), ", ".join(p.get("exclude") or []))
         for p in profiles], "No profiles."),
    "profiles add": lambda p, ns: f"Added profile {p.get('name')} (id {p.get('id')}, {p.get('kind')})",
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
    command("shares", "list shares").add_argument("--all", action="store_true", help="include ended shares")
    command("revoke", "revoke a share").add_argument("id", metavar="SHARE_ID")
    profiles = command("profiles", "list profiles, or add one")
    p = command("add", "add a profile", profiles.add_subparsers(metavar="add", parser_class=Parser),
                "profiles add")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--dependent", action="store_true", help="a dependent, in your care as guardian")
    p.add_argument("--until", type=until_arg, metavar="DATE", help="guardianship ends at this date")
    p.add_argument("--exclude", action="append", default=[], metavar="CODE",
                   help="keep resources labelled with this sensitivity code out of reach (repeatable)")
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
        print(answer.text if getattr(ns, "json", False) else printable(RENDERERS[ns.key](answer.data, ns)))
    except CliError as exc:
        reason = printable(" ".join(str(exc).split()))
        print(reason if reason.startswith("consent-agent ") else f"consent-agent: {reason}", file=sys.stderr)
        return 1
    return 0
