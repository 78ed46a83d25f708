"""User names: what a login name may look like, and the prefix of imported labelers."""

from __future__ import annotations

import re

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,149}$")
EXTERNAL_PREFIX = "ext:"


def trimmed_pattern(max_length: int) -> str:
    """The JSON-schema pattern of a name that has 1 to ``max_length`` characters once
    stripped of white space, and no NUL (how project names and rating axes are checked)."""
    inner = f"(?:[^\\u0000]{{0,{max_length - 2}}}[^\\s\\u0000])?" if max_length > 1 else ""
    return f"^\\s*[^\\s\\u0000]{inner}\\s*$"


"""Labelers known only from imported judgments are named ``ext:<name>``; they cannot log in."""
