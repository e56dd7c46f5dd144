"""A home blood-pressure monitor that writes readings with the patient's consent."""

from examples.bp_monitor.device import Monitor

__all__ = ["Monitor"]
