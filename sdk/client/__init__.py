"""The client kit: an async HTTP client that gets UMA RPTs from a consent agent on its own.

::

    from sdk.client import FileRegistrationStore, UmaSession

    async with UmaSession(store=FileRegistrationStore(data_dir / "agents"), claims=id_token_for) as s:
        r = await s.get("https://lab.example/fhir/Observation")

See ``sdk/README.md`` ("Client kit") for the whole API.
"""

from sdk.client.challenge import Challenge, UmaChallenge, parse_challenges, uma_challenge
from sdk.client.discovery import UMA_GRANT, AgentMetadata, discover
from sdk.client.errors import (
    ChallengeError,
    DiscoveryError,
    NeedInfo,
    RegistrationError,
    RequestDenied,
    RequestSubmitted,
    TokenError,
    UmaError,
)
from sdk.client.hooks import ClaimsProvider, ClaimsRequest, NeedInfoHook, Waiting, WaitingHook
from sdk.client.registration import (
    FileRegistrationStore,
    MemoryRegistrationStore,
    Registration,
    RegistrationStore,
    register,
)
from sdk.client.session import Rpt, UmaSession

__all__ = [
    "UMA_GRANT", "AgentMetadata", "Challenge", "ChallengeError", "ClaimsProvider", "ClaimsRequest",
    "DiscoveryError", "FileRegistrationStore", "MemoryRegistrationStore", "NeedInfo", "NeedInfoHook",
    "Registration", "RegistrationError", "RegistrationStore", "RequestDenied", "RequestSubmitted", "Rpt",
    "TokenError", "UmaChallenge", "UmaError", "UmaSession", "Waiting", "WaitingHook", "discover",
    "parse_challenges", "register", "uma_challenge",
]
