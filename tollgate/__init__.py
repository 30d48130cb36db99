"""The ``tollgate`` command: composes the gateway and the billing worker."""
