"""What an account may do, kept with its billing: the standing evaluated from the dunning
ladder and published (``entitlements``), the history of every change (``history``) and the
advisory messages each change sends (``messages``)."""
