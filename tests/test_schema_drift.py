"""The run-queue tables of ``training.schema`` (what workers write through) against the
migrated database: same columns, types, nullability, defaults, checks, keys and index."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, UniqueConstraint, inspect
from sqlalchemy.dialects import postgresql

from app.db.models import RegisteredWorker, RunMetric, TrainingRun
from training import schema

TABLES = [schema.training_runs, schema.run_metrics, schema.workers]
DIALECT = postgresql.dialect()


def _type(column_type) -> str:
    return column_type.compile(dialect=DIALECT)


def _default(text: str | None) -> str | None:
    return None if text is None else re.sub(r"\s+", " ", str(text)).strip()


@pytest.fixture(scope="module")
def inspector(engine: Engine):
    return inspect(engine)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_columns_types_and_nullability_match_the_migrated_database(inspector, table):
    migrated = {c["name"]: c for c in inspector.get_columns(table.name)}
    assert list(migrated) == [c.name for c in table.columns]
    for column in table.columns:
        found = migrated[column.name]
        assert _type(found["type"]) == _type(column.type), column.name
        assert found["nullable"] == column.nullable, column.name
        if column.server_default is not None:
            assert _default(found["default"]) == _default(column.server_default.arg), column.name
        elif not column.primary_key:
            assert found["default"] is None, column.name


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_keys_and_indexes_match_the_migrated_database(inspector, table):
    foreign = {
        (tuple(fk["constrained_columns"]), fk["referred_table"], fk["options"].get("ondelete"))
        for fk in inspector.get_foreign_keys(table.name)
    }
    assert foreign == {
        ((fk.parent.name,), fk.target_fullname.split(".")[0], fk.ondelete)
        for fk in table.foreign_keys
    }
    indexes = {
        (i["name"], tuple(i["column_names"]))
        for i in inspector.get_indexes(table.name)
        if not i.get("duplicates_constraint")  # the index behind a UNIQUE constraint
    }
    assert indexes == {(i.name, tuple(c.name for c in i.columns)) for i in table.indexes}
    unique = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)}
    assert unique == {
        tuple(c.name for c in u.columns)
        for u in table.constraints
        if isinstance(u, UniqueConstraint)
    }


def test_check_constraints_allow_exactly_the_enums(inspector):
    checks = {c["name"]: c["sqltext"] for c in inspector.get_check_constraints("training_runs")}
    for name, enum in (("kind", schema.RunKind), ("status", schema.RunStatus)):
        allowed = set(re.findall(r"'(\w+)'", checks[f"ck_training_runs_{name}"]))
        assert allowed == {member.value for member in enum}


def test_the_orm_maps_the_schema_tables():
    """One definition: the app's classes carry the very columns of ``training.schema``."""
    for cls, table in (
        (TrainingRun, schema.training_runs),
        (RunMetric, schema.run_metrics),
        (RegisteredWorker, schema.workers),
    ):
        mapped = cls.__table__
        assert [c.name for c in mapped.columns] == [c.name for c in table.columns]
        assert [_type(c.type) for c in mapped.columns] == [_type(c.type) for c in table.columns]
        assert [c.nullable for c in mapped.columns] == [c.nullable for c in table.columns]


def test_every_status_has_its_moves_and_final_ones_leave_only_by_retry():
    assert set(schema.TRANSITIONS) == set(schema.RunStatus)
    assert list(schema.RETRYABLE) == [schema.RunStatus.failed, schema.RunStatus.cancelled]
    for status in schema.FINAL:
        assert schema.TRANSITIONS[status] <= {schema.RunStatus.queued}
    assert schema.can_move("running", "queued") and not schema.can_move("succeeded", "queued")


def test_every_kind_has_a_config_class_and_a_help_text():
    from app.web.routes.runs import KIND_HELP
    from training.config import CONFIG_CLASSES
    from training.jobs import JOB_KINDS

    assert set(CONFIG_CLASSES) == set(schema.RunKind)
    assert set(JOB_KINDS) == set(schema.RunKind)  # the worker runs every kind
    assert set(KIND_HELP) == set(schema.RunKind)
