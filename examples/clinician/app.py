"""A clinician's app on the client kit (sdk/client).

The app signs its clinician in at the hospital (here: :class:`examples.idp.DemoIdP`) and pushes the
ID token when a patient's agent asks who is asking. While the patient decides, ``on_waiting`` is
called at each poll so the app can show "waiting for the patient".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from examples.idp import DemoIdP
from sdk.client import ClaimsRequest, UmaSession, Waiting
from sdk.client.registration import RegistrationStore


@dataclass
class ClinicianApp:
    """``who`` is a key of :data:`examples.idp.CLINICIANS`; ``scopes`` are asked for on every request
    (a surgeon asks for read and write at once, so the patient decides once)."""

    who: str
    idp: DemoIdP
    http: httpx.AsyncClient
    client_name: str = "Riverside Clinician"
    scopes: Sequence[str] = ()
    on_waiting: Callable[[Waiting], Awaitable[None] | None] | None = None
    store: RegistrationStore | None = None
    session: UmaSession = field(init=False)

    def __post_init__(self) -> None:
        self.session = UmaSession(self.http, client_name=self.client_name, claims=self._id_token,
                                  on_waiting=self.on_waiting, scopes=self.scopes, store=self.store, max_wait=900)

    def _id_token(self, request: ClaimsRequest) -> str:
        return self.idp.id_token(self.who, request.client_id)

    async def read(self, records: str, resource_type: str, **params: str) -> httpx.Response:
        return await self.session.get(f"{records}/fhir/{resource_type}", params=params or None)

    async def write(self, records: str, resource: dict[str, Any]) -> httpx.Response:
        return await self.session.post(f"{records}/fhir/{resource['resourceType']}", json=resource)


def surgery_note(author: str, text: str) -> dict[str, Any]:
    """A clinical note as a FHIR DocumentReference."""
    return {"resourceType": "DocumentReference", "status": "current", "type": {"text": "Operative note"},
            "author": [{"display": author}], "description": text,
            "subject": {"reference": "Patient/alice"}}
