"""Helpers for resource servers and clients that talk to a consent agent, possibly through a relay."""

from sdk.jwks import AgentKeysError, agent_id_of, fetch_agent_keys

__all__ = ["AgentKeysError", "agent_id_of", "fetch_agent_keys"]
