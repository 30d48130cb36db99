"""What an account may do, kept with its billing: its standing evaluated from SQL and the
dunning ladder (``evaluation``), what a standing does besides being published -- held or
cancelled billing, collection, advice (``consequences``) -- the refresh that stores and
stages it (``entitlements``), the history of every change and the messages it sends."""
