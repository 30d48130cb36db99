"""Telling people: advisory messages delivered by email and signed webhooks (``notifier``),
to public destinations only (``destinations``), with the signature scheme both our
webhooks and the providers' use (``signing``)."""
