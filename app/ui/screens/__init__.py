"""The app's screens, one module each: inbox, shared, records, activity, profiles, settings."""
