"""``python -m bot``: run every configured platform; ``python -m bot console``: a terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from bot import __version__
from bot.config import ConfigError, Settings, setting
from bot.store import StoreError, StoreUrl, StoreUrlError

DESCRIPTION = """\
Nano Banana image bot for Discord and Telegram, on the useapi.net Google Flow API.

commands:
  run            (default) start every platform whose token is set: DISCORD_TOKEN, TELEGRAM_TOKEN
  console        a terminal front end on the same core, to try USEAPI_TOKEN before any platform
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
        "command", nargs="?", default="run", choices=["run", "console", "migrate-store"]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    if args.command == "migrate-store":
        return migrate_store(args.source, args.target or setting("DATABASE_URL"))
    if args.source or args.target:
        parser.error("--from and --to go with migrate-store")

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from bot import app, logs

    logs.configure(settings)
    if args.command != "console" and not (settings.discord_token or settings.telegram_token):
        print(
            "error: no chat platform is configured: set DISCORD_TOKEN and/or TELEGRAM_TOKEN "
            "(or try `python -m bot console`)",
            file=sys.stderr,
        )
        return 2
    return _run(app.run_console(settings) if args.command == "console" else app.run_bot(settings))


def _run(main: Coroutine[Any, Any, None]) -> int:
    """Run until stopped (0); a setting or store that can't serve ends it with one line (2)."""
    from bot import app

    try:
        app.run(main)
    except Exception as exc:
        fatal = _fatal(exc)
        if fatal is None:
            raise
        print(f"error: {fatal}", file=sys.stderr)
        return 2
    return 0


def _fatal(exc: BaseException) -> BaseException | None:
    """The operator's problem behind ``exc``, also when a TaskGroup wrapped it in a group."""
    if isinstance(exc, ConfigError | StoreError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next(filter(None, map(_fatal, exc.exceptions)), None)
    return None


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
