"""A small identity provider for the demo's clinicians (see provider.py)."""

from examples.idp.provider import CLINICIANS, DemoIdP

__all__ = ["CLINICIANS", "DemoIdP"]
