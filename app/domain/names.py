"""User names: what a login name may look like, and the prefix of imported labelers."""

from __future__ import annotations

import re

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,149}$")
EXTERNAL_PREFIX = "ext:"
"""Labelers known only from imported judgments are named ``ext:<name>``; they cannot log in."""
