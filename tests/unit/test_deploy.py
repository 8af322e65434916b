"""The deploy files, and README's operating sections, say what a working deployment needs (no
container engine runs here: these read the files as the engine and systemd would)."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.core import texts
from bot.core.i18n import LANGUAGES
from bot.core.monitoring import AccountState, Snapshot, UpstreamCall
from bot.observability.metrics import Metrics
from bot.store.migrations import LATEST

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), " ".join(rest.split()))
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def index(kind: str, contains: str = "") -> int:
    return next(i for i, (k, args) in enumerate(instructions()) if k == kind and contains in args)


def test_the_base_image_is_pinned_to_a_patch_release() -> None:
    bases = [args for kind, args in instructions() if kind == "FROM"]
    assert [base.partition(" AS ")[0] for base in bases] == [bases[-1]] * len(bases)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", bases[-1])


def test_the_image_builds_nothing_for_the_catalogues() -> None:
    # The bot reads the .po files it ships (bot/catalogues.py): one stage, no compile step.
    assert [kind for kind, _ in instructions()].count("FROM") == 1
    assert not any("pybabel" in args or ".mo" in args for _, args in instructions())


def test_dependencies_install_in_their_own_layer_before_the_code() -> None:
    deps = index("RUN", "pip install --no-cache-dir -r")
    assert index("COPY", "pyproject.toml") < deps < index("COPY", "bot ./bot")
    assert index("COPY", "bot ./bot") < index("RUN", "--no-deps .")


def test_the_data_folder_is_made_and_owned_by_the_bot_user_before_volume() -> None:
    made = index("RUN", "mkdir -p /app/data")
    assert "chown bot:bot /app/data" in instructions()[made][1]
    assert "useradd" in instructions()[made][1]
    assert made < index("USER", "bot") < index("VOLUME", "/app/data")
    settings = (
        "DATABASE_URL=sqlite:////app/data/bot.sqlite3 BOT_CONSOLE_DIR=/app/data/images "
        "BOT_HTTP_LISTEN=0.0.0.0:8080"
    )
    assert ("ENV", settings) in instructions()


def test_compose_keeps_the_consoles_pictures_in_the_volume_whatever_env_says() -> None:
    """.env's own BOT_CONSOLE_DIR (relative, as .env.example has it) would name a folder under
    /app, which the bot's user can't write; compose's environment wins over env_file."""
    for name, service in (("compose.yaml", "bot"), ("compose.postgres.yaml", "front")):
        bot = yaml.safe_load((DEPLOY / name).read_text())["services"][service]
        assert bot["environment"]["BOT_CONSOLE_DIR"] == "/app/data/images", name


def test_the_healthcheck_asks_healthz_on_the_exposed_port() -> None:
    check = instructions()[index("HEALTHCHECK")][1]
    assert "/healthz" in check
    assert "BOT_HTTP_LISTEN" in check
    assert "8080" in instructions()[index("EXPOSE")][1].split()


def test_dockerignore_keeps_secrets_stores_and_tooling_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".git", "data/", "*.sqlite3", ".venv/", "venv/", ".pytest_cache/"} <= ignored


def test_compose_checks_health_on_the_port_it_listens_on_and_rotates_logs() -> None:
    bot = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["bot"]
    port = bot["environment"]["BOT_HTTP_LISTEN"].rpartition(":")[2]
    assert f"127.0.0.1:{port}/healthz" in " ".join(bot["healthcheck"]["test"])
    assert f"127.0.0.1:{port}:{port}" in bot["ports"]
    assert "8443:8443" in bot["ports"]  # the Telegram webhook
    assert bot["logging"]["driver"] == "json-file"
    assert set(bot["logging"]["options"]) == {"max-size", "max-file"}
    # No endless restarts on a configuration error: a bounded number of tries.
    assert re.fullmatch(r"on-failure:\d+", bot["restart"])
    assert bot["volumes"] == ["bot-data:/app/data"]


def test_the_postgres_compose_runs_a_front_and_workers_on_one_database() -> None:
    services = yaml.safe_load((DEPLOY / "compose.postgres.yaml").read_text())["services"]
    front, worker = services["front"], services["worker"]
    for bot in (front, worker):
        assert bot["environment"]["DATABASE_URL"].startswith("postgresql://bot:")
        assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert re.fullmatch(r"on-failure:\d+", bot["restart"])  # a lost lead exits 1
    assert "BOT_PLATFORMS" not in front["environment"]  # hears every platform with a token
    assert worker["environment"]["BOT_PLATFORMS"] == "none"
    # The image's HEALTHCHECK asks BOT_HTTP_LISTEN's port: set here, not by .env, where an empty
    # BOT_HTTP_LISTEN= (as in .env.example) would turn the listener off.
    assert worker["environment"]["BOT_HTTP_LISTEN"] == "0.0.0.0:8080"
    assert worker["deploy"]["replicas"] == 2
    port = front["environment"]["BOT_HTTP_LISTEN"].rpartition(":")[2]
    assert f"127.0.0.1:{port}/healthz" in " ".join(front["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    # Compose fills ${POSTGRES_PASSWORD} from the .env beside the file (deploy/) unless told.
    text = (DEPLOY / "compose.postgres.yaml").read_text()
    assert "${POSTGRES_PASSWORD" in text
    comments = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    assert re.findall(r"docker compose (\S+ \S+)", comments) == ["--env-file .env"] * 2


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read(DEPLOY / "nano-banana-bot.service")
    return parser


def test_the_systemd_unit_keeps_state_and_stops_on_a_configuration_error() -> None:
    service = unit()["Service"]
    assert service["StateDirectory"] == "nano-banana-bot"
    assert service["Environment"] == ("DATABASE_URL=sqlite:////var/lib/nano-banana-bot/bot.sqlite3")
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"
    assert "ReadWritePaths" not in service
    text = (DEPLOY / "nano-banana-bot.service").read_text()
    assert f"useradd --system --home-dir {service['WorkingDirectory']}" in text
    assert text.count(service["User"]) >= 3


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_finds_nothing_wrong_but_the_missing_install(tmp_path: Path) -> None:
    unit_file = tmp_path / "nano-banana-bot.service"
    text = (DEPLOY / "nano-banana-bot.service").read_text()
    unit_file.write_text(text.replace("/opt/nano-banana-bot/.venv/bin/python", "/bin/true"))
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit_file)], capture_output=True, text=True, check=False
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr == ""


class OneAccount:
    def snapshot(self) -> Snapshot:
        account = AccountState("a@example.com", limit=3, in_flight=0, serving=True)
        return Snapshot(accounts=(account,), platforms={"telegram": True})


def watched() -> Metrics:
    """Metrics with their gauges (those read from a snapshot: only once one is watched)."""
    metrics = Metrics()
    metrics.watch(OneAccount())
    return metrics


def test_the_grafana_dashboard_shows_every_metric_family() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    metrics = watched()
    metrics.delivery_failed("telegram", permanent=False)
    metrics.alert_undelivered("telegram")
    metrics.upstream_answered(UpstreamCall.GENERATE, "a@example.com", 1.0, 429)
    families = {
        re.sub(r"_(bucket|count|sum)$", "", sample.name)
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name.startswith("nanobanana_") and not sample.name.endswith("_created")
    }
    assert len(families) == 11
    for name in families:
        assert any(name in expr for expr in exprs), f"no panel shows {name}"


def test_the_built_package_speaks_every_shipped_language(tmp_path: Path) -> None:
    # What `pip install .` puts in site-packages (setuptools' build_py, package data included),
    # run from elsewhere: the catalogues come with the code, nothing compiled beforehand.
    subprocess.run(
        [
            *(sys.executable, "-c", "from setuptools import setup; setup()", "-q"),
            *("egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib"),
            str(tmp_path / "lib"),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    told = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot import catalogues; catalogues.install()\n"
            "from bot.core import i18n, texts\n"
            f"assert i18n.__file__.startswith({str(tmp_path)!r})\n"
            "for code in i18n.LANGUAGES: print(code, i18n.language(code).render(texts.BUSY))",
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "lib"), "PATH": os.environ.get("PATH", "")},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    english = str(texts.BUSY)
    assert told[0] == f"en {english}"
    assert len(told) == len(LANGUAGES) >= 2
    assert all(line.split(" ", 1)[1] != english for line in told[1:])


def test_the_public_listener_is_published_apart_and_never_set_for_the_operator() -> None:
    """Its port is published on this machine for the TLS proxy, beside (not instead of) the
    private one; BOT_PUBLIC_LISTEN itself comes from .env only: set by the image or compose, a
    bot whose proxy still sent /references/ to 8080 would start and answer 404s, instead of
    stopping with the one line that names the setting."""
    assert "8081" in instructions()[index("EXPOSE")][1].split()
    assert not any("BOT_PUBLIC_LISTEN=" in argument for _, argument in instructions())
    for name, service in (("compose.yaml", "bot"), ("compose.postgres.yaml", "front")):
        bot = yaml.safe_load((DEPLOY / name).read_text())["services"][service]
        assert "127.0.0.1:8081:8081" in bot["ports"]
        assert "127.0.0.1:8080:8080" in bot["ports"]
        assert "BOT_PUBLIC_LISTEN" not in bot["environment"]


def test_the_readme_names_the_metrics_there_are() -> None:
    exported = {
        name
        for name in re.findall(r"^# HELP (nanobanana_\w+)", watched().render().decode(), re.M)
        if not name.endswith("_created")
    }
    named = set(re.findall(r"`(nanobanana_\w+)", (ROOT / "README.md").read_text()))
    assert named == exported


def test_the_readme_shows_check_on_the_current_schema() -> None:
    shown = re.findall(r"✓ store: .* schema (\d+)", (ROOT / "README.md").read_text())
    assert shown == [str(LATEST)]
