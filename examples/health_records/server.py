"""Riverside Health Records: a FHIR-flavoured records server whose every read and write is decided by
the patient's consent agent, through the resource-server kit (sdk/rs).

Two protected resources, each registered at the agent with ``read`` and ``write`` scopes:

- ``record``, "Medical record": Patient, Condition, MedicationStatement, laboratory Observations and
  DocumentReference (clinical notes). Dr. Bob adds his surgery note here (``write``).
- ``bp``, "Blood pressure readings": vital-sign Observations from the home monitor, registered when
  the monitor is paired (:func:`register_monitor_resource`). The monitor writes, the doctors read.

Routes (FHIR style, JSON): ``GET /fhir/metadata`` (open), ``GET /fhir/{type}`` (``read``),
``POST /fhir/{type}`` (``write``), where an Observation with ``category=vital-signs`` belongs to ``bp``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from examples.health_records.chart import TYPES, Chart, bundle, check_resource
from sdk.rs import ResourceServerKit, description
from sdk.rs.starlette import Protection

RECORD = "record"
BP = "bp"
MAX_BODY = 64 * 1024
MAX_DEPTH = 32
FHIR_JSON = "application/fhir+json"

RECORD_DESCRIPTION = description(
    "Medical record", ["read", "write"], type="https://hl7.org/fhir/R4/patient.html",
    description="Conditions, medications, lab results and clinical notes kept by Riverside Health")
BP_DESCRIPTION = description(
    "Blood pressure readings", ["read", "write"], type="https://hl7.org/fhir/R4/bp.html",
    description="Readings from the home blood-pressure monitor")


async def register_record_resource(kit: ResourceServerKit) -> str:
    return await kit.resources.ensure(RECORD, RECORD_DESCRIPTION)


async def register_monitor_resource(kit: ResourceServerKit) -> str:
    """Place the home monitor's readings under the agent's protection (a new resource)."""
    return await kit.resources.ensure(BP, BP_DESCRIPTION)


def resource_key(resource_type: str, category: str | None) -> str:
    return BP if resource_type == "Observation" and category == "vital-signs" else RECORD


def _category_of(body: dict[str, Any]) -> str | None:
    for cat in body.get("category") or []:
        for coding in (cat or {}).get("coding") or []:
            if coding.get("code"):
                return str(coding["code"])
    return None


def build_app(kit: ResourceServerKit, chart: Chart, *, public_url: str) -> Starlette:
    protect = Protection(kit, public_url=public_url, realm="riverside-health")
    base = public_url.rstrip("/") + "/fhir"

    def needed(request: Request) -> str | None:
        kind = request.path_params["type"]
        if kind not in TYPES:
            return None
        category = request.query_params.get("category")
        return kit.resources.id_of(resource_key(kind, category))

    @protect.require(resource=needed, scopes=["read"])
    async def search(request: Request) -> Response:
        kind = request.path_params["type"]
        found = chart.search(kind, category=request.query_params.get("category"))
        return JSONResponse(bundle(found, base), media_type=FHIR_JSON)

    async def create(request: Request) -> Response:
        kind = request.path_params["type"]
        if kind not in TYPES or kind == "Patient":
            return JSONResponse(_outcome("not-supported", f"{kind} cannot be created here"), 405)
        raw = bytearray()
        async for chunk in request.stream():  # the limit holds while reading, not after
            raw += chunk
            if len(raw) > MAX_BODY:
                return JSONResponse(_outcome("too-costly", "the body is larger than 64 KiB"), 413)
        try:
            body = check_resource(parse_json(bytes(raw)), kind)
        except ValueError as exc:
            return JSONResponse(_outcome("invalid", str(exc)), 400)
        rid = kit.resources.id_of(resource_key(kind, _category_of(body)))
        if rid is None:
            return JSONResponse(_outcome("not-found", "that kind of record is not kept here yet"), 404)
        outcome = await protect.check(request, rid, ["write"])
        if isinstance(outcome, Response):
            return outcome
        body.setdefault("meta", {})["source"] = f"client {outcome.client_id}"
        stored = chart.add(body)
        return JSONResponse(stored, 201, headers={"Location": f"{base}/{kind}/{stored['id']}"},
                            media_type=FHIR_JSON)

    async def routed(request: Request) -> Response:
        return await (search(request) if request.method == "GET" else create(request))

    async def metadata(_: Request) -> Response:
        return JSONResponse({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
                             "fhirVersion": "4.0.1", "format": ["json"],
                             "rest": [{"mode": "server", "resource": [{"type": t} for t in TYPES],
                                       "security": {"description": f"UMA 2.0; authorization server {kit.issuer}"}}]},
                            media_type=FHIR_JSON)

    app = Starlette(routes=[Route("/fhir/metadata", metadata), Route("/fhir/{type}", routed, methods=["GET", "POST"])])
    return app


def parse_json(raw: bytes) -> Any:
    """JSON that can be stored and sent back: no NaN or Infinity (RFC 8259 §6), no unpaired
    surrogate (§8.2), at most :data:`MAX_DEPTH` levels deep."""
    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        body = json.loads(raw, parse_constant=constant)
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    except UnicodeError:
        raise ValueError("the body is not UTF-8 text") from None
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from None
    stack = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"the body is nested more than {MAX_DEPTH} levels deep")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return body


def _outcome(code: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]}
