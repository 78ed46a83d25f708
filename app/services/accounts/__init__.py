"""Accounts: who someone is and what they may do.

* ``users``: creating users, login (rate-limited).
* ``tokens``: API tokens.
* ``policy``: the one place that decides who may see or do what (SPEC §1).
* ``security``: password and token hashing.
"""
