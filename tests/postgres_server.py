"""A real PostgreSQL for the tests: ``BOT_TEST_DATABASE_URL``, or a throwaway cluster of our own.

The throwaway cluster lives in a temporary directory and listens only on a unix socket there (no
port to collide with a parallel run), runs without fsync (nothing here outlives a power cut), and
is stopped and deleted at the end of the session. initdb refuses to run as root, so as root the
cluster runs as the ``postgres`` user (Debian's package makes one), else as ``nobody``.

Every test gets a database of its own (``CREATE DATABASE`` takes a few ms), dropped after it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV_URL = "BOT_TEST_DATABASE_URL"
ENV_REQUIRED = "BOT_TEST_REQUIRE_POSTGRES"
SUPERUSER = "postgres"


class Unavailable(Exception):
    """No PostgreSQL can be had here; the message says why and what would help."""


class PostgresServer:
    """A server we may create databases on, through the maintenance URL ``admin_url``."""

    def __init__(self, admin_url: str, *, socket_dir: Path | None = None):
        self.admin_url = admin_url
        self.socket_dir = socket_dir  # set for our own cluster (it checks passwords there)

    def url(self, database: str, *, user: str | None = None, password: str | None = None) -> str:
        """``admin_url`` pointed at another database (and user), keeping host and options."""
        parts = urlsplit(self.admin_url)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rpartition("@")[2]
            login = quote(user) + (f":{quote(password)}" if password is not None else "")
            netloc = f"{login}@{host}"
        return urlunsplit(parts._replace(netloc=netloc, path="/" + quote(database)))

    def execute(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def create_database(self) -> str:
        name = f"bot_test_{uuid.uuid4().hex[:16]}"
        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """``BOT_TEST_DATABASE_URL``'s server, else a throwaway cluster; or ``Unavailable``.

    The cluster skips fsync unless ``durable`` (benchmarks want what a real server does).
    """
    given = os.environ.get(ENV_URL, "").strip()
    if given:
        try:
            with psycopg.connect(given, connect_timeout=10):
                pass
        except psycopg.Error as exc:
            reason = f"{ENV_URL} is set but can't be reached ({type(exc).__name__})"
            raise Unavailable(reason) from None
        yield PostgresServer(given)
        return
    home = Path(tempfile.mkdtemp(prefix="bot-pg-"))
    try:
        try:
            cluster = _Cluster.start(home, durable=durable)
        except Unavailable as exc:
            hint = f"install PostgreSQL, or set {ENV_URL}=postgresql://…"
            raise Unavailable(f"{exc} ({hint})") from None
        try:
            yield PostgresServer(
                f"postgresql://{SUPERUSER}@/postgres?host={quote(str(home), safe='')}",
                socket_dir=home,
            )
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class _Cluster:
    bindir: Path
    home: Path
    as_user: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.home / "data"

    @classmethod
    def start(cls, home: Path, *, durable: bool) -> _Cluster:
        cluster = cls(_bindir(), home, _run_as())
        if cluster.as_user:
            os.chown(home, cluster.as_user["user"], cluster.as_user["group"])
        cluster.run(
            "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8",
            "--auth-local=trust", "--no-sync",
        )  # fmt: skip
        # The superuser gets in on trust; other roles must give their password, so that a test
        # can see what a wrong one produces.
        (cluster.data / "pg_hba.conf").write_text(
            f"local all {SUPERUSER} trust\nlocal all all scram-sha-256\n"
        )
        options = f"-k {home} -c listen_addresses=''"
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            cluster.run(
                "pg_ctl", "-D", str(cluster.data), "-l", str(home / "log"), "-o", options,
                "-w", "-t", "60", "start",
            )  # fmt: skip
        except Unavailable as exc:
            log = (home / "log").read_text(errors="replace").strip().splitlines()
            raise Unavailable(f"{exc}; its log ends: {log[-1] if log else '(empty)'}") from None
        return cluster

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def run(self, program: str, *args: str) -> None:
        try:
            subprocess.run(
                [str(self.bindir / program), *args],
                check=True,
                capture_output=True,
                text=True,
                cwd=self.home,
                timeout=90,
                **self.as_user,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            output = getattr(exc, "stderr", None) or getattr(exc, "stdout", None) or str(exc)
            last = (output.strip().splitlines() or ["(no output)"])[-1]
            raise Unavailable(f"{program} failed: {last}") from None


def _bindir() -> Path:
    """Where initdb and pg_ctl are: on PATH, or the newest of Debian's versioned directories."""
    found = shutil.which("pg_ctl")
    if found is not None and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
    )
    if not versions:
        raise Unavailable("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    return versions[-1].parent


def _run_as() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    for name in (SUPERUSER, "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    raise Unavailable("running as root, and there is no 'postgres' or 'nobody' user to run it")
