"""The OpenAPI document describes exactly the routes the router serves, as OpenAPI 3.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.agent import Agent
from core.openapi import EXTRAS, build_document
from core.routes import public_routes
from tests.kit import ISSUER, http, make_agent

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    a = make_agent(tmp_path)
    yield a
    a.close()


@pytest.fixture
def doc(agent: Agent) -> dict[str, Any]:
    resp = http(agent).get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json"
    body: dict[str, Any] = resp.json()
    return body


def router_operations() -> set[tuple[str, str]]:
    return {(r.path, m) for r in public_routes() for m in r.methods}


def document_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, m.upper()) for path, item in doc["paths"].items() for m in item if m in METHODS}


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def test_the_document_and_the_router_list_the_same_operations(doc: dict[str, Any]) -> None:
    assert document_operations(doc) == router_operations()


def test_the_extras_table_describes_every_operation_and_nothing_else() -> None:
    assert set(EXTRAS) == router_operations()


def test_summaries_come_from_the_route_table(doc: dict[str, Any]) -> None:
    for route in public_routes():
        for method in route.methods:
            assert doc["paths"][route.path][method.lower()]["summary"] == route.summary


def test_the_document_is_openapi_3_1_served_at_the_issuer(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"] == [{"url": ISSUER}]
    assert all(path.startswith("/") for path in doc["paths"])


def test_operation_ids_are_unique(doc: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


def test_every_operation_names_its_responses_by_status_code(doc: dict[str, Any]) -> None:
    for _, _, op in operations(doc):
        assert op["responses"]
        for code, response in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", code)
            assert isinstance(response["description"], str)


def test_post_and_put_operations_declare_their_request_media_type(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        if method in ("post", "put"):
            media = set(op["requestBody"]["content"])
            assert media <= {"application/json", "application/x-www-form-urlencoded"}, path
            assert len(media) == 1, path
        else:
            assert "requestBody" not in op, path


def test_registration_is_json_and_answers_201(doc: dict[str, Any]) -> None:
    op = doc["paths"]["/register"]["post"]
    assert set(op["requestBody"]["content"]) == {"application/json"}
    assert "201" in op["responses"]
    assert "204" in doc["paths"]["/register/{client_id}"]["delete"]["responses"]


def test_path_parameters_match_the_path_templates(doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        names = re.findall(r"\{(\w+)\}", path)
        declared = [p["name"] for p in item.get("parameters", []) if p["in"] == "path"]
        assert declared == names, path
        assert all(p["required"] is True for p in item.get("parameters", []))
    assert doc["paths"]["/register/{client_id}"]["parameters"][0]["name"] == "client_id"


def test_security_requirements_name_declared_schemes(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert {"patBearer", "patDPoP", "clientSecretBasic", "registrationAccessToken"} <= set(schemes)
    for _, _, op in operations(doc):
        for requirement in op.get("security", []):
            assert set(requirement) <= set(schemes)
    assert {"registrationAccessToken": []} in doc["paths"]["/register/{client_id}"]["get"]["security"]
    assert {"patBearer": []} in doc["paths"]["/permission"]["post"]["security"]


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    found = list(refs(doc))
    assert found
    for ref in found:
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]


def test_the_servers_url_follows_an_issuer_with_a_path(tmp_path: Path) -> None:
    agent = make_agent(tmp_path, public_url="https://relay.example/abc")
    resp = http(agent).get("https://relay.example/abc/openapi.json")
    assert resp.status_code == 200
    assert resp.json()["servers"] == [{"url": "https://relay.example/abc"}]
    assert build_document(agent.settings, public_routes()) == resp.json()
    agent.close()
