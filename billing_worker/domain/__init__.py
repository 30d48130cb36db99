"""The pure billing core: standard library (and ``shared.money``/``shared.states``) only.

Every function takes ``now`` and the policy as arguments; nothing here reads a clock,
settings, a database or the network.
"""
