"""The session-control gateway: the hot path. Reads Redis and its own memory, never SQL."""
