"""One imported prompt, checked field by field (SPEC §2, §3).

Every format (JSON Lines, CSV, preference pairs) ends up as :class:`ImportRow`. The
checks here collect every problem of a record, each naming its field the way the file
spells it (``completions[2].text``, ``judgments[0].ranking``), instead of stopping at
the first one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.domain.errors import Detail, Problems, ValidationFailed
from app.domain.names import EXTERNAL_PREFIX, USERNAME_RE
from app.domain.rankings import validate_ranking

MIN_COMPLETIONS = 2
MAX_COMPLETIONS = 9
MAX_ID_LENGTH = 200
MAX_JUDGMENTS = 1000
ROLES = ("system", "user", "assistant")

ROW_FIELDS = ("id", "prompt", "completions", "metadata", "gold", "judgments")
COMPLETION_FIELDS = ("id", "text", "model", "metadata")
JUDGMENT_FIELDS = ("labeler", "ranking", "reject_all")
MESSAGE_FIELDS = ("role", "content")
_COMPLETION_KEYS = frozenset(COMPLETION_FIELDS)
_ROW_KEYS = frozenset(ROW_FIELDS)


@dataclass(slots=True)
class CompletionIn:
    external_id: str
    text: str
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ImportedJudgment:
    """A judgment an imported record carries, by an external labeler (``ext:…``)."""

    labeler: str
    ranking: list[list[str]] | None
    reject_all: bool = False


@dataclass(slots=True)
class ImportRow:
    """A valid prompt ready to be written.

    ``id_from`` says where ``external_id`` came from: ``"id"`` (the file's own id),
    ``"prompt text"`` (a hash of it: a repeat is an error asking for an id column) or
    ``"content"`` (a hash of the whole record: a repeat is the same record, skipped).
    """

    line: int
    external_id: str
    prompt: str | list[dict[str, str]]
    completions: list[CompletionIn]
    metadata: dict[str, Any] = field(default_factory=dict)
    gold: list[list[str]] | None = None
    judgments: list[ImportedJudgment] = field(default_factory=list)
    id_from: str = "id"


def content_hash(*parts: Any) -> str:
    """A short stable hash of JSON-serialisable parts (for ids derived from content)."""
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


MAX_JSON_DEPTH = 64
"""How deep a metadata object may nest: deeper would exhaust the stack of every walker."""


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON (a string holding NUL, which PostgreSQL
    refuses, or nesting deeper than ``MAX_JSON_DEPTH``), else None. Iterative: any depth
    is safe to check."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "must not contain NUL characters"
        elif isinstance(item, Mapping | list):
            if depth >= MAX_JSON_DEPTH:
                return f"must not nest deeper than {MAX_JSON_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return None


class Checker(Problems):
    """Collects the problems of one record (one line), with checks of its values."""

    def unknown_fields(self, obj: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
        for key in obj:
            if key not in allowed:
                name = f"{where}.{key}" if where else str(key)
                self.add(name, f"unknown field; allowed: {', '.join(allowed)}")

    def identifier(self, value: Any, name: str) -> str | None:
        """An id: a non-empty string (or an integer, kept as its decimal text)."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.add(name, f"must be a string, got {type_name(value)}")
        elif not value.strip():
            self.add(name, "must not be empty")
        elif len(value) > MAX_ID_LENGTH:
            self.add(name, f"must be at most {MAX_ID_LENGTH} characters")
        elif "\x00" in value:
            self.add(name, "must not contain NUL characters")
        else:
            return value
        return None

    def text(self, value: Any, name: str, *, allow_empty: bool = True) -> str | None:
        if not isinstance(value, str):
            self.add(name, f"must be a string, got {type_name(value)}")
        elif not allow_empty and not value.strip():
            self.add(name, "must not be empty")
        elif "\x00" in value:
            self.add(name, "must not contain NUL characters")
        else:
            return value
        return None

    def json_object(self, value: Any, name: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(name, f"must be an object, got {type_name(value)}")
        elif problem := json_problem(value):
            self.add(name, problem)
        else:
            return value
        return {}

    def prompt(self, value: Any, name: str = "prompt") -> str | list[dict[str, str]] | None:
        """A non-empty string, or a non-empty list of ``{role, content}`` chat messages."""
        if isinstance(value, str) or not isinstance(value, list):
            if not isinstance(value, str):
                self.add(name, f"must be a string or a list of messages, got {type_name(value)}")
                return None
            return self.text(value, name, allow_empty=False)
        if not value:
            self.add(name, "must not be an empty list of messages")
            return None
        before = len(self.details)
        messages = [self._message(m, f"{name}[{i}]") for i, m in enumerate(value)]
        return messages if len(self.details) == before else None  # type: ignore[return-value]

    def _message(self, value: Any, name: str) -> dict[str, str] | None:
        if not isinstance(value, dict):
            self.add(name, f"must be an object {{role, content}}, got {type_name(value)}")
            return None
        self.unknown_fields(value, MESSAGE_FIELDS, name)
        if value.get("role") not in ROLES:
            self.add(f"{name}.role", f"must be one of {', '.join(ROLES)}")
        content = self.text(value.get("content"), f"{name}.content")
        return {"role": value.get("role"), "content": content or ""}

    def ranking(self, value: Any, name: str, ids: Sequence[str]) -> list[list[str]] | None:
        """Tiers covering every completion id exactly once (ties allowed)."""
        try:
            tiers = validate_ranking(value, ids, allow_ties=True)
        except ValidationFailed as exc:
            for detail in exc.details:
                self.add(name, detail["message"])
            return None
        return [list(tier) for tier in tiers]


def _short_string(value: Any, plain: bool = False) -> bool:
    return type(value) is str and len(value) <= MAX_ID_LENGTH and (plain or "\x00" not in value)


def _plain_completion(item: Any, plain: bool = False) -> CompletionIn | None:
    """The usual well-formed completion, checked in one go (imports of 100k prompts spend
    most of their checking time here); None sends it to the field-by-field checks.
    ``plain``: the record is known to hold no NUL and to nest shallowly (skip those checks)."""
    if type(item) is not dict or not item.keys() <= _COMPLETION_KEYS:
        return None
    cid, text = item.get("id"), item.get("text")
    model, metadata = item.get("model"), item.get("metadata")
    if (
        _short_string(cid, plain)
        and cid.strip()
        and type(text) is str
        and (plain or "\x00" not in text)
        and (model is None or _short_string(model, plain))
        and (
            metadata is None
            or (type(metadata) is dict and (plain or json_problem(metadata) is None))
        )
    ):
        return CompletionIn(cid, text, model, metadata or {})
    return None


def _checked_completion(c: Checker, item: Any, name: str) -> CompletionIn | None:
    """One completion checked field by field, every problem named."""
    if not isinstance(item, dict):
        c.add(name, f"must be an object {{id, text}}, got {type_name(item)}")
        return None
    c.unknown_fields(item, COMPLETION_FIELDS, name)
    cid = c.identifier(item.get("id"), f"{name}.id")
    text = c.text(item.get("text"), f"{name}.text")
    model = item.get("model")
    if model is not None and not _short_string(model):
        c.add(f"{name}.model", f"must be a string of at most {MAX_ID_LENGTH} characters")
    metadata = c.json_object(item.get("metadata"), f"{name}.metadata")
    if cid is None or text is None:
        return None
    return CompletionIn(cid, text, model if _short_string(model) else None, metadata)


def check_completions(c: Checker, value: Any) -> list[CompletionIn]:
    """``completions``: 2 to 9 objects ``{id, text, model?, metadata?}`` with unique ids."""
    if not isinstance(value, list):
        c.add("completions", f"must be a list of completions, got {type_name(value)}")
        return []
    if not MIN_COMPLETIONS <= len(value) <= MAX_COMPLETIONS:
        c.add(
            "completions",
            f"a prompt has {MIN_COMPLETIONS} to {MAX_COMPLETIONS} completions, got {len(value)}",
        )
    out: list[CompletionIn] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        completion = _plain_completion(item) or _checked_completion(c, item, f"completions[{i}]")
        if completion is None:
            continue
        if completion.external_id in seen:
            c.add(
                f"completions[{i}].id",
                f"duplicate completion id {completion.external_id!r} in this prompt",
            )
        seen.add(completion.external_id)
        out.append(completion)
    return out


def check_labeler(c: Problems, value: Any, name: str) -> str | None:
    if not isinstance(value, str) or not value.startswith(EXTERNAL_PREFIX):
        c.add(name, "must be an external labeler name such as 'ext:annotator1'")
        return None
    if not USERNAME_RE.match(value) or len(value) <= len(EXTERNAL_PREFIX):
        c.add(name, "after 'ext:', use 1 to 146 letters, digits or _ . @ : -")
        return None
    return value


def check_judgments(c: Checker, value: Any, ids: Sequence[str]) -> list[ImportedJudgment]:
    """``judgments``: ``[{labeler: "ext:name", ranking, reject_all?}]``, one per labeler."""
    if value is None:
        return []
    if not isinstance(value, list):
        c.add("judgments", f"must be a list, got {type_name(value)}")
        return []
    if len(value) > MAX_JUDGMENTS:
        c.add("judgments", f"at most {MAX_JUDGMENTS} judgments per prompt")
        return []
    out: list[ImportedJudgment] = []
    labelers: set[str] = set()
    for i, item in enumerate(value):
        name = f"judgments[{i}]"
        if not isinstance(item, dict):
            c.add(name, f"must be an object {{labeler, ranking}}, got {type_name(item)}")
            continue
        c.unknown_fields(item, JUDGMENT_FIELDS, name)
        labeler = check_labeler(c, item.get("labeler"), f"{name}.labeler")
        reject_all = item.get("reject_all", False)
        if not isinstance(reject_all, bool):
            c.add(f"{name}.reject_all", f"must be true or false, got {type_name(reject_all)}")
            continue
        ranking = None
        if item.get("ranking") is not None or not reject_all:
            ranking = c.ranking(item.get("ranking"), f"{name}.ranking", ids)
            if ranking is None:
                continue
        if labeler in labelers:
            c.add(f"{name}.labeler", f"{labeler} judges this prompt more than once")
        elif labeler is not None:
            labelers.add(labeler)
            out.append(ImportedJudgment(labeler, ranking, reject_all))
    return out


def check_row(obj: dict[str, Any], line: int) -> ImportRow | list[Detail]:
    """A JSON Lines record (SPEC §3) as an ImportRow, or every problem found in it."""
    c = Checker(line)
    c.unknown_fields(obj, ROW_FIELDS, "")
    if "id" not in obj:
        c.add("id", "missing: every prompt needs an id (unique in the file)")
    external_id = c.identifier(obj.get("id"), "id") if "id" in obj else None
    if "prompt" not in obj:
        c.add("prompt", "missing")
    prompt = c.prompt(obj.get("prompt")) if "prompt" in obj else None
    if "completions" not in obj:
        c.add("completions", f"missing: a list of {MIN_COMPLETIONS} to {MAX_COMPLETIONS}")
    completions = check_completions(c, obj.get("completions", []))
    metadata = c.json_object(obj.get("metadata"), "metadata")
    gold, judgments = None, []
    if not any(p["field"].startswith("completions") for p in c.details):
        # Rankings are checked against the completion ids, so only once those are sound.
        ids = [comp.external_id for comp in completions]
        gold = None if obj.get("gold") is None else c.ranking(obj["gold"], "gold", ids)
        judgments = check_judgments(c, obj.get("judgments"), ids)
    if c.details or external_id is None or prompt is None:
        return c.details
    return ImportRow(line, external_id, prompt, completions, metadata, gold, judgments)


def plain_row(obj: dict[str, Any], line: int) -> ImportRow | None:
    """A well-formed JSON Lines record checked in one go, when it is known to hold no NUL
    and to nest shallowly (``formats._decode``); None sends it to ``check_row``, which
    finds and words every problem. The result is the one ``check_row`` would return."""
    if not obj.keys() <= _ROW_KEYS:
        return None
    external_id, prompt = obj.get("id"), obj.get("prompt")
    items, metadata = obj.get("completions"), obj.get("metadata")
    if not (
        type(external_id) is str
        and len(external_id) <= MAX_ID_LENGTH
        and external_id.strip()
        and type(items) is list
        and MIN_COMPLETIONS <= len(items) <= MAX_COMPLETIONS
        and (metadata is None or type(metadata) is dict)
    ):
        return None
    completions = []
    for item in items:
        if (completion := _plain_completion(item, True)) is None:
            return None
        completions.append(completion)
    if len({comp.external_id for comp in completions}) < len(completions):
        return None
    row = ImportRow(line, external_id, prompt, completions, metadata or {})
    if type(prompt) is str and obj.get("gold") is None and not obj.get("judgments"):
        return row if prompt.strip() else None
    return _with_rankings(row, obj)


def _with_rankings(row: ImportRow, obj: dict[str, Any]) -> ImportRow | None:
    """``plain_row``'s prompt as chat messages, gold and judgments, else None."""
    c = Checker(row.line)
    if type(row.prompt) is not str or not row.prompt.strip():
        row.prompt = c.prompt(row.prompt) if type(row.prompt) is list else None  # type: ignore[assignment]
    ids = [comp.external_id for comp in row.completions]
    if obj.get("gold") is not None:
        row.gold = c.ranking(obj["gold"], "gold", ids)
    row.judgments = check_judgments(c, obj.get("judgments"), ids)
    return None if c.details or row.prompt is None else row
