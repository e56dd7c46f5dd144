"""A clinical-grade blood-pressure monitor's uploader, on the client kit (sdk/client).

The device has no person to vouch for: the patient shares ``write`` with the device itself
(``consent-agent share ... --with client:CLIENT_ID``), so it pushes no claims; its registration (its
client id and keys) is what the share names, kept in ``store`` across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from examples.health_records.chart import blood_pressure
from sdk.client import UmaSession
from sdk.client.registration import RegistrationStore

MODEL = "Riverside BP-200 home monitor"


@dataclass
class Monitor:
    http: httpx.AsyncClient
    store: RegistrationStore | None = None
    session: UmaSession = field(init=False)

    def __post_init__(self) -> None:
        self.session = UmaSession(self.http, client_name=MODEL, store=self.store)

    async def pair(self, agent: str) -> str:
        """Register at the patient's agent; returns the client id the patient shares with."""
        return (await self.session.connect(agent)).client_id

    async def send(self, records: str, systolic: int, diastolic: int, when: datetime | None = None) -> httpx.Response:
        stamp = (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return await self.session.post(f"{records}/fhir/Observation",
                                       json=blood_pressure(systolic, diastolic, stamp, device=MODEL))
