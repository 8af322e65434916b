"""``python -m bot``: run every configured platform; ``python -m bot console``: a terminal."""

from __future__ import annotations

import argparse
import sys

from bot import __version__
from bot.config import ConfigError, Settings

DESCRIPTION = """\
Nano Banana image bot for Discord and Telegram, on the useapi.net Google Flow API.

commands:
  run       (default) start every platform whose token is set: DISCORD_TOKEN, TELEGRAM_TOKEN
  console   a terminal front end on the same core, to try USEAPI_TOKEN before any platform

Settings come from the environment and from a .env file in the working directory;
.env.example lists every one of them with a comment."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "console"])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from bot import app

    app.configure_logging(settings.log_level)
    if args.command == "console":
        app.run(app.run_console(settings))
        return 0
    if settings.discord_token is None and settings.telegram_token is None:
        print(
            "error: no chat platform is configured: set DISCORD_TOKEN and/or TELEGRAM_TOKEN "
            "(or try `python -m bot console`)",
            file=sys.stderr,
        )
        return 2
    app.run(app.run_bot(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
