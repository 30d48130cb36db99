"""The services: what the management API and the console do, each once.

A handler parses a request, calls one service and renders what it returns; the console's
pages call the same services. A service locks what it changes in the one order every writer
uses (``families``), applies the domain's rules, settles what a change bills
(``settling``), and raises ``errors`` that the HTTP edge renders as problem+json.
"""
