"""The resource-server kit: protect an HTTP API with a patient's consent agent (UMA 2.0).

::

    kit = await connect("https://relay.example/<agent_id>", client_name="City Lab", state_dir=Path("uma"))
    if not kit.connected:
        await kit.connect_device(lambda d: print("Approve the request showing", d.user_code))
    rid = await kit.resources.ensure("results", description("Lab results", ["read", "write"]))
    protect = Protection(kit, public_url="https://lab.example")   # from sdk.rs.starlette

See the README's "Resource-server kit" section.
"""

from sdk.jwks import AgentKeysError
from sdk.rs.challenge import UNREACHABLE_WARNING, Denial
from sdk.rs.connect import connect
from sdk.rs.discovery import AgentKeys, AgentMetadata
from sdk.rs.http import AgentError, AgentUnreachable
from sdk.rs.kit import ResourceServerKit
from sdk.rs.pat import AuthorizationRequest, ConnectError, DeviceAuthorization
from sdk.rs.resources import description
from sdk.rs.rpt import Access, Permission, TokenRejected
from sdk.rs.session import NotConnected
from sdk.rs.state import Registration, StateError

__all__ = [
    "UNREACHABLE_WARNING",
    "Access",
    "AgentError",
    "AgentKeys",
    "AgentKeysError",
    "AgentMetadata",
    "AgentUnreachable",
    "AuthorizationRequest",
    "ConnectError",
    "Denial",
    "DeviceAuthorization",
    "NotConnected",
    "Permission",
    "Registration",
    "ResourceServerKit",
    "StateError",
    "TokenRejected",
    "connect",
    "description",
]
