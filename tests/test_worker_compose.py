"""docker-compose.yml and the Dockerfile stay runnable (`docker compose config` cannot run
here): services, the environment each gets, the worker's GPU reservation, the image."""

from __future__ import annotations

import re

import pytest
import typer
import yaml
from sqlalchemy.engine import make_url

from app.cli import app as cli_app
from app.settings import Settings
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
REQUIRED = {"POSTGRES_PASSWORD", "SECRET_KEY"}  # the only variables without a default
NOT_SETTINGS = {"HF_HOME", "HF_HUB_OFFLINE"}  # read by the training libraries
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}|\$\$")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error}; $$ is a literal $."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.groups()
        if env.get(name):
            return env[name]
        if op == "?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == "-" else ""

    return _VARIABLE.sub(one, value)


def environment(service: str, env: dict[str, str]) -> dict[str, str]:
    return {k: interpolate(str(v), env) for k, v in SERVICES[service]["environment"].items()}


def test_three_services_on_one_database_and_one_data_folder():
    assert set(SERVICES) == {"postgres", "web", "worker"}
    for name in ("web", "worker"):
        assert SERVICES[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "data:/data" in SERVICES[name]["volumes"]
        assert SERVICES[name]["environment"]["DATA_DIR"] == "/data"
    assert SERVICES["worker"]["image"] == SERVICES["web"]["image"]  # built once, by web
    assert "pg_isready" in " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert set(COMPOSE["volumes"]) == {"pgdata", "data"}


def test_web_migrates_then_serves():
    command = " ".join(SERVICES["web"]["command"])
    assert re.search(r"prefloop db upgrade && exec prefloop serve", command)
    assert SERVICES["web"]["ports"] == ["${WEB_PORT:-8000}:8000"]
    assert SERVICES["web"]["environment"]["HOST"] == "0.0.0.0"


def test_every_variable_is_a_setting_and_the_environment_validates():
    settings = {name.upper() for name in Settings.model_fields}
    env = {"POSTGRES_PASSWORD": "pw", "SECRET_KEY": "x" * 32}
    for name in ("web", "worker"):
        unknown = set(SERVICES[name]["environment"]) - settings - NOT_SETTINGS
        assert unknown == set(), f"{name} sets variables Prefloop does not read: {unknown}"
        values = environment(name, env)
        url = make_url(values["DATABASE_URL"])
        assert (url.drivername, url.host, url.password) == ("postgresql+psycopg", "postgres", "pw")
        parsed = Settings(**{k.lower(): v for k, v in values.items() if k not in NOT_SETTINGS})
        assert parsed.environment == "production" and parsed.worker_stale_seconds == 60
    for required in REQUIRED:
        with pytest.raises(KeyError, match=required):
            environment("web", {k: v for k, v in env.items() if k != required})


def test_every_variable_without_a_default_is_a_known_secret():
    text = (ROOT / "docker-compose.yml").read_text()
    bare = {m.group(1) for m in _VARIABLE.finditer(text) if m.group(1) and not m.group(2)}
    required = {m.group(1) for m in _VARIABLE.finditer(text) if m.group(2) == "?"}
    assert bare == set() and required == REQUIRED


def test_worker_reserves_a_gpu_and_runs_prefloop_worker():
    worker = SERVICES["worker"]
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert interpolate(device["device_ids"][0], {}) == "0"  # a string: interpolation-safe
    assert "count" not in device  # compose cannot interpolate count (docker/compose#11097)
    assert worker["command"][:2] == ["prefloop", "worker"]
    worker_command = typer.main.get_command(cli_app).commands["worker"]
    options = {opt for p in worker_command.params for opt in p.opts}
    assert {o for o in worker["command"] if o.startswith("--")} <= options
    grace = worker["stop_grace_period"]
    assert grace.endswith("m") and int(grace[:-1]) >= 1  # time to re-queue on SIGTERM


def test_dockerfile_builds_one_non_root_image_with_the_app_files():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", dockerfile, re.M)
    assert re.search(r"^USER prefloop$", dockerfile, re.M)
    assert re.search(r'^CMD \["prefloop", "serve"\]$', dockerfile, re.M)
    for folder in ("app", "training", "migrations", "templates", "static"):
        assert re.search(rf"^COPY {folder} \./{folder}$", dockerfile, re.M), folder
    assert "COPY . " not in dockerfile  # never the virtualenv, models or data
    assert 'pip install -e ".${EXTRAS:+[$EXTRAS]}"' in dockerfile  # dependencies, cached
    assert re.search(r"^COPY app \./app\nRUN pip install --no-deps \. ", dockerfile, re.M)
