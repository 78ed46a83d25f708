"""JSON API under /api/v1 (SPEC §7). Every module's ``router`` is mounted by create_app."""
