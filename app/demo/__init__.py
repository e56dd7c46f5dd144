"""``consent-agent demo``: the story of the seed documents, played through a real relay."""
