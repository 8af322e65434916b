"""``python -m bot``: run every configured platform; ``python -m bot console``: a terminal."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from bot import __version__
from bot.config import DEFAULT_DATABASE, ConfigError, Settings, setting
from bot.core.ports import LeaseLost
from bot.store import StoreError, StoreUrl, StoreUrlError

DESCRIPTION = """\
Nano Banana image bot for Discord and Telegram, on the useapi.net Google Flow API, the Gemini
API, nano-banana-pro.net or Wireflow (BOT_PROVIDERS orders them).

commands:
  run            (default) start every platform whose token is set (DISCORD_TOKEN, TELEGRAM_TOKEN),
                 or those BOT_PLATFORMS names (none: a pure worker)
  check          check every configured token and provider and the store, one line each (✓ or
                 ✗ and what to do); exit 0 only if all pass, 1 if one fails. Run it first.
  console        a terminal front end on the same core, to try the roads' keys before any platform
  backup PATH    copy the SQLite store (DATABASE_URL) to PATH, safely while the bot runs, and
                 check the copy; --force replaces an existing PATH. (PostgreSQL: use pg_dump.)
  migrate-store  copy a SQLite store into an empty PostgreSQL database, once, with the bot
                 stopped: --from sqlite:///data/bot.sqlite3 [--to postgresql://…]

Settings come from the environment and from a .env file in the working directory;
.env.example lists every one of them with a comment."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=["run", "check", "console", "backup", "migrate-store"],
    )
    parser.add_argument("path", nargs="?", help="backup: where to write the copy")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--force", action="store_true", help="backup: replace PATH if it exists")
    copying = parser.add_argument_group("migrate-store")
    copying.add_argument("--from", dest="source", metavar="URL", help="the sqlite:/// store")
    copying.add_argument(
        "--to",
        dest="target",
        metavar="URL",
        help="the postgresql:// database (default: DATABASE_URL; the password may come from "
        "PGPASSWORD or ~/.pgpass instead, which keeps it out of the process list)",
    )
    args = parser.parse_args(argv)
    if (args.path is not None or args.force) != (args.command == "backup"):
        parser.error("backup takes a PATH (and --force); no other command does")
    if args.command == "backup":
        return backup(Path(args.path), force=args.force)
    if args.command == "migrate-store":
        return migrate_store(args.source, args.target or setting("DATABASE_URL"))
    if args.source or args.target:
        parser.error("--from and --to go with migrate-store")

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from bot import app, catalogues, logs

    logs.configure(settings)
    catalogues.install(settings.default_language)
    if args.command == "check":
        return check(settings)
    if args.command != "console" and not (settings.discord_token or settings.telegram_token):
        print(
            "error: no chat platform is configured: set DISCORD_TOKEN and/or TELEGRAM_TOKEN "
            "(or try `python -m bot console`)",
            file=sys.stderr,
        )
        return 2
    return _run(app.run_console(settings) if args.command == "console" else app.run_bot(settings))


def _run(main: Coroutine[Any, Any, None]) -> int:
    """Run until stopped (0); a setting or store that can't serve ends it with one line (2), a
    lost lead or a front end that stopped serving too (1: start again)."""
    from bot import app

    try:
        app.run(main)
    except Exception as exc:
        fatal = _fatal(exc)
        if fatal is None:
            raise
        print(f"error: {fatal}", file=sys.stderr)
        return 1 if isinstance(fatal, LeaseLost | app.FrontEndStopped) else 2
    return 0


def _fatal(exc: BaseException) -> BaseException | None:
    """The operator's problem behind ``exc``, also when a TaskGroup wrapped it in a group."""
    from bot.app import FrontEndStopped

    if isinstance(exc, ConfigError | StoreError | LeaseLost | FrontEndStopped):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next(filter(None, map(_fatal, exc.exceptions)), None)
    return None


def check(settings: Settings) -> int:
    """``check``: one line per check on stdout; 0 if every one passed, else 1."""
    from bot.check import run_checks

    # Its lines are the report; the bot's own INFO lines (a store migrated) would interleave.
    root = logging.getLogger()
    root.setLevel(max(root.level, logging.WARNING))
    lines = asyncio.run(run_checks(settings))
    for line in lines:
        print(line)
    return 0 if all(line.ok for line in lines) else 1


def backup(target: Path, *, force: bool) -> int:
    """``backup``: one line saying what was copied, or what is wrong (2)."""
    from bot.backup import backup as copy

    try:
        given = setting("DATABASE_URL")
        print(copy(StoreUrl.parse(given) if given else DEFAULT_DATABASE, target, force=force))
    except (StoreError, StoreUrlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def migrate_store(source: str | None, target: str) -> int:
    """``migrate-store``: one line per table copied, or one line saying what is wrong."""
    from bot.store.copy import copy_store

    if not source or not target:
        print(
            "error: migrate-store needs --from sqlite:///… and --to (or DATABASE_URL) "
            "postgresql://…",
            file=sys.stderr,
        )
        return 2
    try:
        asyncio.run(copy_store(StoreUrl.parse(source), StoreUrl.parse(target), print))
    except (StoreError, StoreUrlError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
