"""The Dockerfile, compose.yaml and the deploy/ examples, checked by reading them (no Docker engine
runs in the tests; ``docker compose config`` is run when a compose CLI is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scayle_orderwise.config import SECRET_FIELDS, ConnectorSettings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
EXAMPLE_TOML = ROOT / "deploy" / "scayle-orderwise.example.toml"
EXAMPLE_ENV = ROOT / "deploy" / "example.env"


def _dockerfile_env() -> dict[str, str]:
    block = re.search(r"^ENV (.+?)(?=^\S)", DOCKERFILE, re.M | re.S)
    assert block is not None
    return dict(re.findall(r"(\w+)=(\S+)", block.group(1)))


def _secret_env_names() -> set[str]:
    return {
        f"SCAYLE_ORDERWISE_{section.upper()}__{name.upper()}"
        for section, names in SECRET_FIELDS.items()
        for name in names
        if section != "alerts"  # the alert webhook is optional
    }


def test_the_image_runs_the_service_as_a_user_with_a_liveness_check() -> None:
    env = _dockerfile_env()
    port = env["SCAYLE_ORDERWISE_SERVICE__PORT"]
    assert re.search(rf"^EXPOSE {port}$", DOCKERFILE, re.M)
    assert f"http://127.0.0.1:{port}/healthz" in DOCKERFILE
    assert re.search(
        r'pip install .*"\$\(ls /wheels/scayle_orderwise-\*\.whl\)\[service,postgres\]"', DOCKERFILE
    )
    assert re.search(r'^ENTRYPOINT \["scayle-orderwise"\]$', DOCKERFILE, re.M)
    assert re.search(r'^CMD \[.*"serve"\]$', DOCKERFILE, re.M)
    assert re.search(r"^USER scayle$", DOCKERFILE, re.M)
    assert re.search(r"^STOPSIGNAL SIGTERM$", DOCKERFILE, re.M)
    assert env["SCAYLE_ORDERWISE_SERVICE__HOST"] == "0.0.0.0"


def test_compose_runs_the_service_with_postgres_and_secrets_from_the_environment() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"service", "postgres"}
    service = services["service"]
    assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    environment = service["environment"]
    for name in _secret_env_names():
        assert environment[name].startswith("${"), name  # never a literal secret
    assert environment["SCAYLE_ORDERWISE_STORE__URL"].startswith("postgresql://")
    assert "${POSTGRES_PASSWORD}" in environment["SCAYLE_ORDERWISE_STORE__URL"]
    config_path = _dockerfile_env()["SCAYLE_ORDERWISE_CONFIG"]
    assert any(v.endswith(f":{config_path}:ro") for v in service["volumes"])
    assert any(
        v.endswith(":" + _dockerfile_env()["SCAYLE_ORDERWISE_SERVICE__REPORTS_DIR"])
        for v in service["volumes"]
    )
    grace = ConnectorSettings.load(EXAMPLE_TOML).service.shutdown_grace_seconds
    assert int(service["stop_grace_period"].rstrip("s")) > grace
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_example_env_lists_exactly_the_secrets_compose_needs() -> None:
    names = {
        line.split("=", 1)[0]
        for line in EXAMPLE_ENV.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert names == _secret_env_names() | {"POSTGRES_PASSWORD"}
    assert all(line.endswith("=") for line in EXAMPLE_ENV.read_text().splitlines() if "=" in line)


def test_example_configuration_loads_and_names_every_export() -> None:
    settings = ConnectorSettings.load(EXAMPLE_TOML)
    assert settings.orderwise.missing_exports() == []
    assert settings.service.orders.interval_seconds == 60
    assert settings.service.shutdown_grace_seconds < settings.flows.lease_seconds


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = (
        ["docker", "compose"]
        if shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
        else ["docker-compose"]
        if shutil.which("docker-compose")
        else None
    )
    if command is None:
        pytest.skip("no docker compose CLI installed")
    (tmp_path / "compose.yaml").write_text((ROOT / "compose.yaml").read_text())
    (tmp_path / "scayle-orderwise.toml").write_text(EXAMPLE_TOML.read_text())
    env_lines = [f"{name}=x" for name in sorted(_secret_env_names() | {"POSTGRES_PASSWORD"})]
    (tmp_path / ".env").write_text("\n".join(env_lines) + "\n")
    done = subprocess.run([*command, "config"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "postgres" in done.stdout
