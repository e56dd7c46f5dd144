"""Alice's chart as FHIR R4-shaped JSON, and a small in-memory store of it.

Only the shape matters for the demo: each entry is a FHIR resource (``resourceType``, ``id``,
``subject``...) so a clinician's client reads what a FHIR server would give it. Codes are LOINC and
SNOMED CT where a real chart would carry them.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator
from typing import Any

PATIENT_ID = "alice"
SUBJECT = {"reference": f"Patient/{PATIENT_ID}", "display": "Alice Martin"}
BP_PANEL = {"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}
SYSTOLIC = {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}
DIASTOLIC = {"system": "http://loinc.org", "code": "8462-4", "display": "Diastolic blood pressure"}
VITAL_SIGNS = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs"}]}]
LABORATORY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                           "code": "laboratory"}]}]

TYPES = ("Patient", "Condition", "MedicationStatement", "Observation", "DocumentReference")


def blood_pressure(systolic: int, diastolic: int, when: str, *, device: str | None = None) -> dict[str, Any]:
    """An Observation in the FHIR vital-signs blood-pressure profile."""
    def mmhg(value: int) -> dict[str, Any]:
        return {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}

    obs: dict[str, Any] = {
        "resourceType": "Observation", "status": "final", "category": VITAL_SIGNS,
        "code": {"coding": [BP_PANEL], "text": "Blood pressure"}, "subject": SUBJECT, "effectiveDateTime": when,
        "component": [
            {"code": {"coding": [SYSTOLIC]}, "valueQuantity": mmhg(systolic)},
            {"code": {"coding": [DIASTOLIC]}, "valueQuantity": mmhg(diastolic)},
        ],
    }
    if device:
        obs["device"] = {"display": device}
    return obs


def alice_chart() -> list[dict[str, Any]]:
    """The records Alice's regular physician, Dr. Carol, has built up over the years."""
    return [
        {"resourceType": "Patient", "id": PATIENT_ID, "name": [{"family": "Martin", "given": ["Alice"]}],
         "gender": "female", "birthDate": "1979-04-12"},
        {"resourceType": "Condition", "subject": SUBJECT, "clinicalStatus": {"text": "active"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003",
                              "display": "Hypertensive disorder"}], "text": "High blood pressure"},
         "onsetDateTime": "2019-06-03"},
        {"resourceType": "Condition", "subject": SUBJECT, "clinicalStatus": {"text": "active"},
         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "235919008",
                              "display": "Cholelithiasis"}], "text": "Gallstones"},
         "onsetDateTime": "2026-09-14"},
        {"resourceType": "MedicationStatement", "subject": SUBJECT, "status": "active",
         "medicationCodeableConcept": {"text": "Lisinopril 10 mg tablet"}, "dosage": [{"text": "once daily"}]},
        {"resourceType": "Observation", "subject": SUBJECT, "status": "final", "category": LABORATORY,
         "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
         "valueQuantity": {"value": 5.4, "unit": "%"}, "effectiveDateTime": "2026-10-02"},
        blood_pressure(138, 88, "2026-10-02T09:30:00Z"),
        {"resourceType": "DocumentReference", "subject": SUBJECT, "status": "current",
         "type": {"text": "Referral letter"}, "author": [{"display": "Dr. Carol White"}], "date": "2026-10-05",
         "description": "Referral to Dr. Bob Jones for laparoscopic cholecystectomy."},
    ]


class Chart:
    """A thread-safe list of FHIR resources with ids assigned on write."""

    def __init__(self, entries: list[dict[str, Any]] | None = None) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._entries: list[dict[str, Any]] = []
        for entry in entries if entries is not None else alice_chart():
            self.add(entry)

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = copy.deepcopy(resource)
            stored.setdefault("id", f"{stored['resourceType'].lower()}-{next(self._ids)}")
            self._entries.append(stored)
            return copy.deepcopy(stored)

    def search(self, resource_type: str, *, category: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._entries
                    if e["resourceType"] == resource_type and (category is None or category in _categories(e))]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            return iter([copy.deepcopy(e) for e in self._entries])


def _categories(entry: dict[str, Any]) -> set[str]:
    return {c.get("code") for cat in entry.get("category") or [] for c in cat.get("coding") or []}


def bundle(entries: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """A FHIR searchset Bundle of ``entries``."""
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries),
            "entry": [{"fullUrl": f"{base}/{e['resourceType']}/{e['id']}", "resource": e} for e in entries]}


def check_resource(body: Any, resource_type: str) -> dict[str, Any]:
    """A body a client may write: a JSON object of ``resource_type`` about this patient."""
    if not isinstance(body, dict) or body.get("resourceType") != resource_type:
        raise ValueError(f"the body must be a FHIR {resource_type}")
    subject = body.get("subject")
    if subject is not None and (not isinstance(subject, dict) or subject.get("reference") != SUBJECT["reference"]):
        raise ValueError(f"the subject must be {SUBJECT['reference']}")
    category = body.get("category")
    if category is not None and not (isinstance(category, list) and all(
            isinstance(c, dict) and isinstance(c.get("coding", []), list)
            and all(isinstance(x, dict) and isinstance(x.get("code", ""), str) for x in c.get("coding", []))
            for c in category)):
        raise ValueError("category must be a list of CodeableConcepts (each coding with a string code)")
    clean: dict[str, Any] = {k: v for k, v in body.items() if k != "id"}
    clean["subject"] = SUBJECT
    return clean
