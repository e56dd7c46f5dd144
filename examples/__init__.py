"""Examples: a health-records server, a clinician app, a blood-pressure monitor and a sign-in service."""
