"""A clinician's app: reads a patient's records and writes notes, with the patient's consent."""

from examples.clinician.app import ClinicianApp

__all__ = ["ClinicianApp"]
