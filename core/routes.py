"""The public protocol surface: every route, its methods and handler, in one table.

The OpenAPI document is generated from this table, so the two cannot drift apart.
"""

from __future__ import annotations

from core.asgi import Route, Router
from core.oauth import authorize, device, introspection, metadata, registration, revocation, token
from core.uma import permissions, resources


def public_routes() -> list[Route]:
    from core import openapi

    return [
        Route("/.well-known/uma2-configuration", {"GET": metadata.uma_configuration},
              "UMA 2.0 authorization server metadata (UMA Grant §2, FedAuthz §2)"),
        Route("/.well-known/oauth-authorization-server", {"GET": metadata.oauth_configuration},
              "RFC 8414 authorization server metadata"),
        Route("/jwks.json", {"GET": metadata.jwks}, "Token-signing keys (JWK Set)"),
        Route("/jwks.jwt", {"GET": metadata.signed_jwks}, "The JWK Set signed by the agent's identity key"),
        Route("/openapi.json", {"GET": openapi.document}, "This document"),
        Route("/register", {"POST": registration.register}, "Dynamic client registration (RFC 7591)"),
        Route("/register/{client_id}", {"GET": registration.read, "PUT": registration.update,
                                        "DELETE": registration.delete},
              "Client configuration (RFC 7592)"),
        Route("/authorize", {"GET": authorize.authorize},
              "Authorization endpoint for PATs (code + PKCE S256); the owner approves on the device"),
        Route("/device_authorization", {"POST": device.device_authorization},
              "Device authorization (RFC 8628 §3.1)"),
        Route("/device", {"GET": device.verification_page}, "Where to approve a device request (RFC 8628 §3.3)"),
        Route("/token", {"POST": token.token}, "Token endpoint (RFC 6749 §3.2, UMA Grant §3.3.1, RFC 8628 §3.4)"),
        Route("/introspect", {"POST": introspection.introspect}, "Token introspection (RFC 7662, FedAuthz §5)"),
        Route("/revoke", {"POST": revocation.revoke}, "Token revocation (RFC 7009, UMA Grant §3.7)"),
        Route("/resource_set", {"GET": resources.list_resources, "POST": resources.create},
              "Resource registration (FedAuthz §3.2)"),
        Route("/resource_set/{rid}", {"GET": resources.read, "PUT": resources.update, "DELETE": resources.delete},
              "One registered resource (FedAuthz §3.2)"),
        Route("/permission", {"POST": permissions.request_permission}, "Permission tickets (FedAuthz §4)"),
    ]


def public_router() -> Router:
    return Router(public_routes())
