"""A FHIR-flavoured health-records server protected by consent-agent (see server.py)."""
