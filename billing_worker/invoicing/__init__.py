"""Invoicing around the pure rules of ``domain``: the tenant's catalog versions, a
subscription row read as terms, the invoicer that bills what is due (with prefetching for
runs), the ledger that applies payments and credit, parents' summaries, item adjustments,
account changes that keep what was billed, and usage folded in from the gateways."""
