"""The objects a service validates itself (project ``settings``, export ``filters``, a run's
``config``, a judgment's ranking rule) have real schemas in the served OpenAPI document, and
the schema and the validator agree: what one refuses, the other refuses (issue 11)."""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.domain.errors import ValidationFailed
from app.domain.export_filters import ExportFilters
from app.main import create_app
from app.services.labeling.checks import JudgmentIn, clean_judgment
from app.services.project_settings import ProjectSettings, parse_settings
from app.settings import Settings
from training.config import CONFIG_CLASSES, ConfigError, build_config
from training.config_base import BOUNDS, Bounds


@pytest.fixture(scope="module")
def document() -> dict:
    """The served document (building it needs no database)."""
    return create_app(Settings(database_url="postgresql+psycopg://unused/x")).openapi()


def _valid(document: dict, component: str, value: Any) -> bool:
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return Draft202012Validator(schema).is_valid(value)


def _property(document: dict, model: str, name: str) -> dict:
    return document["components"]["schemas"][model]["properties"][name]


def test_the_request_bodies_refer_to_the_object_schemas(document):
    configs = [{"$ref": f"#/components/schemas/{c.__name__}"} for c in CONFIG_CLASSES.values()]
    assert _property(document, "NewRun", "config")["anyOf"] == configs
    settings = {"$ref": "#/components/schemas/ProjectSettings"}
    assert _property(document, "NewProject", "settings")["allOf"] == [settings]
    assert settings in _property(document, "ProjectPatch", "settings")["anyOf"]
    filters = {"$ref": "#/components/schemas/ExportFilters"}
    assert filters in _property(document, "NewExport", "filters")["anyOf"]


def _kind(cls: type) -> str:
    return next(kind.value for kind, c in CONFIG_CLASSES.items() if c is cls)


def _outside(bounds: Bounds, integer: bool) -> list[float]:
    step = 1 if integer else 1e-6
    values = [bounds.gt, bounds.lt]
    values += [None if bounds.ge is None else bounds.ge - step]
    values += [None if bounds.le is None else bounds.le + step]
    return [v for v in values if v is not None and v not in bounds.also]


def _edges(bounds: Bounds) -> list[float]:
    return [v for v in (bounds.ge, bounds.le, *bounds.also) if v is not None]


@pytest.mark.parametrize("cls", CONFIG_CLASSES.values(), ids=lambda c: c.__name__)
def test_every_config_field_is_in_its_schema_with_its_type_and_bounds(document, cls):
    kind, hints = _kind(cls), typing.get_type_hints(cls)
    properties = document["components"]["schemas"][cls.__name__]["properties"]
    fields = dataclasses.fields(cls)
    assert set(properties) == {f.name for f in fields}
    for f in fields:
        takes_text = str in (hints[f.name], *typing.get_args(hints[f.name]))
        single = {f.name: 7 if takes_text else "text"}
        assert not _valid(document, cls.__name__, single), f.name  # a wrong type: both refuse
        with pytest.raises(ConfigError) as refused:
            build_config(kind, overrides=single)
        assert refused.value.field == f.name
        bounds = f.metadata.get(BOUNDS)
        if bounds is None:
            continue
        integer = hints[f.name] in (int, int | None)
        for value in _outside(bounds, integer):
            value = int(value) if integer else value
            assert not _valid(document, cls.__name__, {f.name: value}), (f.name, value)
            with pytest.raises(ConfigError) as refused:
                build_config(kind, overrides={f.name: value})
            assert refused.value.field == f.name, (f.name, value)
        for value in _edges(bounds):
            value = int(value) if integer else float(value)
            assert _valid(document, cls.__name__, {f.name: value}), (f.name, value)
            try:  # a rule between fields may still refuse it, never the field's own bounds
                build_config(kind, overrides={f.name: value})
            except ConfigError as exc:
                assert str(exc) != f"{f.name} {bounds.text()}", (f.name, value)


@pytest.mark.parametrize("cls", CONFIG_CLASSES.values(), ids=lambda c: c.__name__)
def test_every_config_choice_is_in_its_schema(document, cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if typing.get_origin(hints[f.name]) is typing.Literal:
            choices = _property(document, cls.__name__, f.name)["enum"]
            expected = ["ddp"] if f.name == "distributed" and cls.ONLY_DDP else None
            assert choices == (expected or list(typing.get_args(hints[f.name])))
            for value in choices:  # a rule between fields may refuse one, naming the other
                try:
                    build_config(_kind(cls), overrides={f.name: value})
                except ConfigError as exc:
                    assert exc.field != f.name, (f.name, value)


FILTERS = [
    *({"min_judgments": v} for v in (0, 5, 5.0, -1, True, 1.5, "3")),
    *({"min_agreement": v} for v in (0, 1, 0.5, 1.1, -0.1, True, "0.5")),
    *({"exclude_labelers": v} for v in ([], ["a", "b"], ["a", 1], "a")),
    *({"include_gold": v} for v in (True, False, 1, "true")),
    *({"ties": v} for v in ("drop", "keep", "x", 1)),
    {"unknown": 1},
    {},
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_the_filters_schema_accepts_what_the_validator_accepts(document, filters):
    try:
        ExportFilters.from_dict(filters)
        accepted = True
    except ValidationFailed:
        accepted = False
    assert _valid(document, "ExportFilters", filters) == accepted


SETTINGS = [
    *({"labels_per_prompt": v} for v in (1, 20, 3.0, 0, 21, 2.5, "3", True)),
    *({"allow_ties": v} for v in (True, 1, "t")),
    *({"gold_rate": v} for v in (0, 1, 0.5, 1.5, "0.5")),
    *({"rating_axes": v} for v in (["a"], [" a "], ["x" * 40], [" x" * 21], ["x" * 41])),
    *({"rating_axes": v} for v in ([""], ["  "], ["a", "a"], ["a"] * 9)),
    *({"render": v} for v in ("plain", "html")),
    {"adaptive": {"max_labels": 3, "min_agreement": 0.5}},
    {"adaptive": {"max_labels": 4.0, "min_agreement": 1}},
    {"adaptive": {"max_labels": 21, "min_agreement": 0.5}},
    {"adaptive": None},
    {"unknown": 1},
]
"""Not here: two axes equal once stripped (``["a", " a"]``), which ``uniqueItems`` cannot
see, and ``adaptive.max_labels`` under ``labels_per_prompt`` (a rule between two fields:
tests/helpers/schemathesis.toml)."""


@pytest.mark.parametrize("settings", SETTINGS, ids=repr)
def test_the_settings_schema_accepts_what_the_api_accepts(document, settings):
    try:
        parse_settings(settings, strict=True)
        accepted = True
    except ValidationFailed:
        accepted = False
    assert _valid(document, "ProjectSettings", settings) == accepted


def test_the_api_takes_settings_with_their_json_types_only(client, admin_headers):
    """A form's strings are converted; the API, as its schema says, takes a number."""
    body = {"name": "typed", "settings": {"labels_per_prompt": "3", "allow_ties": 1}}
    answer = client.post("/api/v1/projects", json=body, headers=admin_headers)
    fields = {d["field"] for d in answer.json()["error"]["details"]}
    assert answer.status_code == 422
    assert fields == {"settings.labels_per_prompt", "settings.allow_ties"}
    body["settings"] = {"labels_per_prompt": 3, "allow_ties": True, "gold_rate": 0}
    assert client.post("/api/v1/projects", json=body, headers=admin_headers).status_code == 201
    assert ProjectSettings.model_json_schema()["additionalProperties"] is False


JUDGMENTS = [
    {},
    {"reject_all": False},
    {"reject_all": True},
    {"reject_all": True, "ranking": None},
    {"reject_all": True, "ranking": []},
    {"reject_all": True, "ranking": [["a"], ["b"]]},
    {"ranking": [["a"], ["b"]]},
    {"ranking": [["a", "b"]], "reject_all": False},
    {"ranking": []},
    {"ranking": [[]]},
    {"ranking": [["a", 1]]},
]


@pytest.mark.parametrize("body", JUDGMENTS, ids=repr)
def test_the_judgment_schema_states_the_ranking_rule(document, body):
    try:
        clean_judgment(JudgmentIn(**body), ["a", "b"], ProjectSettings())
        accepted = True
    except ValidationFailed:
        accepted = False
    assert _valid(document, "JudgmentIn", body) == accepted


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("p", True), ("  p q  ", True), ("x" * 200, True), ("", False), ("   ", False)]
    + [("x" * 201, False), (" " + "x" * 200 + " ", True)],
)
def test_the_project_name_schema_is_the_services_rule(
    document, client, admin_headers, name, accepted
):
    """1 to MAX_NAME characters once stripped (the service strips it)."""
    pattern = _property(document, "NewProject", "name")["pattern"]
    assert bool(re.search(pattern, name)) == accepted
    answer = client.post("/api/v1/projects", json={"name": name}, headers=admin_headers)
    assert answer.status_code == (201 if accepted else 422)


def test_a_whole_float_is_an_integer_as_in_json_schema(document):
    """JSON's 3.0 is the integer 3: schema and validator both take it (and 2.5 neither)."""
    assert build_config("reward", overrides={"lora_r": 8.0}).lora_r == 8
    assert _valid(document, "RewardRunConfig", {"lora_r": 8.0})
    with pytest.raises(ConfigError):
        build_config("reward", overrides={"lora_r": 8.5})
    assert not _valid(document, "RewardRunConfig", {"lora_r": 8.5})
