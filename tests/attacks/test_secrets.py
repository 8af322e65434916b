"""Tokens and users' words, hunted for where an operator's logs and crash output show them.

Secrets are kept out at the source (``Secret`` prints as ``***``, chatty library loggers are held
above DEBUG); the log redactor is the second line of defence, and these tests try both.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from bot import logs
from bot.config import Secret, Settings
from bot.store import StoreUrl
from tests.conftest import AnyStore
from tests.e2e.discord.harness import TOKEN as DISCORD_TOKEN
from tests.e2e.discord.harness import USER, on_original, start_bot
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.telegram_server import FakeTelegramServer

USEAPI_TOKEN = "user:42-useapi/secret+token=="


def forms(secret: str) -> list[str]:
    """A secret as logs would show it: raw, or URL-encoded as in a query or a path."""
    return [secret, quote(secret, safe=""), quote_plus(secret), quote(secret)]


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in forms(secret):
            assert form not in text, f"{form!r} leaked"


async def run(*args: str, env: dict[str, str], cwd: Path, stdin: bytes = b"") -> tuple[int, str]:
    """Run the CLI; its status and everything it printed (stdout + stderr), or fail on a hang."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(Path.cwd()), **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(stdin), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError("the process hung") from None
    assert process.returncode is not None
    return process.returncode, out.decode()


@pytest.mark.parametrize(
    "token",
    [
        "123456:AAH-well-formed_but-revoked",  # Telegram answers 401 Unauthorized
        "123456:not a/token+at=all",  # a malformed one: 404 Not Found
    ],
)
async def test_a_rejected_telegram_token_is_not_printed_and_the_bot_exits_2(
    tmp_path: Path, token: str
) -> None:
    async with FakeFlowServer(token=USEAPI_TOKEN) as flow, FakeTelegramServer() as tg:
        code, out = await run(
            "-m",
            "bot",
            env={
                "USEAPI_TOKEN": USEAPI_TOKEN,
                "USEAPI_BASE_URL": flow.base_url,
                "TELEGRAM_TOKEN": token,
                "TELEGRAM_API_URL": tg.root,
                "BOT_LOG_LEVEL": "DEBUG",
            },
            cwd=tmp_path,
        )
    assert code == 2
    assert out.strip().splitlines()[-1] == (
        "error: TELEGRAM_TOKEN was refused by Telegram: check it, or get a new one from @BotFather"
    )
    assert "Traceback" not in out
    assert_no_secret(out, token, USEAPI_TOKEN)


async def test_a_useapi_token_the_upstream_refuses_is_not_printed(tmp_path: Path) -> None:
    telegram_token = "123456:telegram-secret-token"
    async with (
        FakeFlowServer(token="the-right-one") as flow,
        FakeTelegramServer(token=telegram_token) as tg,
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env={
                "PATH": os.environ["PATH"],
                "PYTHONPATH": str(Path.cwd()),
                "USEAPI_TOKEN": USEAPI_TOKEN,
                "USEAPI_BASE_URL": flow.base_url,
                "TELEGRAM_TOKEN": telegram_token,
                "TELEGRAM_API_URL": tg.root,
                "BOT_LOG_LEVEL": "DEBUG",
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await tg.wait_for("deleteWebhook", timeout=15)
            await tg.post_message(7, 7, "a lighthouse in a storm")
            async with asyncio.timeout(15):
                while not any(r.status == 401 for r in flow.requests):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await tg.wait_for("sendMessage", timeout=15)
        finally:
            process.send_signal(signal.SIGTERM)
            out, _ = await asyncio.wait_for(process.communicate(), 30)
    text = out.decode()
    assert process.returncode == 0, text[-2000:]
    assert "USEAPI_TOKEN" in text  # the operator is told which setting to check
    assert_no_secret(text, USEAPI_TOKEN, telegram_token)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """``logs.configure`` on a buffer, undone afterwards (root handler, levels and hooks)."""
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        {n: logging.getLogger(n).level for n in logs.FLOORS},
        (sys.excepthook, threading.excepthook, sys.unraisablehook),
    )
    buffer = io.StringIO()
    yield buffer
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)
    sys.excepthook, threading.excepthook, sys.unraisablehook = saved[3]
    logging.captureWarnings(False)


def settings_with_secrets(gemini_api_key: Secret | None = None) -> Settings:
    return Settings(
        useapi_token=Secret(USEAPI_TOKEN),
        database=StoreUrl.parse("postgresql://bot:db-pass-word@db.internal/bot"),
        discord_token=Secret("discord.token.value"),
        telegram_token=Secret("123456:telegram-secret"),
        telegram_webhook_secret=Secret("webhook-secret-value"),
        log_level="DEBUG",
        gemini_api_key=gemini_api_key,
    )


def test_a_secret_in_a_library_log_line_or_traceback_is_redacted(captured: io.StringIO) -> None:
    settings = settings_with_secrets(gemini_api_key=Secret("AIza-gemini-key"))
    logs.configure(settings, stream=captured)
    secrets = [
        USEAPI_TOKEN,
        "discord.token.value",
        "123456:telegram-secret",
        "webhook-secret-value",
        "AIza-gemini-key",
        "db-pass-word",
    ]
    library = logging.getLogger("telegram.ext.Application")
    for secret in secrets:
        try:
            raise RuntimeError(f"POST https://example.org/bot{quote(secret, safe='')}/getMe")
        except RuntimeError:
            library.exception("request for %s failed", secret)
        logging.getLogger("httpx").warning("GET https://x/?key=%s", quote_plus(secret))
    text = captured.getvalue()
    assert text.count("request for *** failed") == len(secrets)
    assert text.count("Traceback") == len(secrets)
    assert_no_secret(text, *secrets)


def test_a_secret_in_a_json_log_line_or_its_traceback_is_redacted(
    captured: io.StringIO,
) -> None:
    settings = dataclasses.replace(
        settings_with_secrets(gemini_api_key=Secret("AIza-gemini-key")), log_format="json"
    )
    logs.configure(settings, stream=captured)
    secrets = [USEAPI_TOKEN, "discord.token.value", "AIza-gemini-key", "db-pass-word"]
    for secret in secrets:
        try:
            raise RuntimeError(f"GET https://example.org/?key={quote_plus(secret)}")
        except RuntimeError:
            logging.getLogger("telegram.ext.Application").exception("calling %s failed", secret)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["calling *** failed"] * len(secrets)
    assert all(
        "RuntimeError: GET https://example.org/?key=***" in line["exception"] for line in lines
    )
    assert_no_secret(captured.getvalue(), *secrets)


def test_an_interaction_token_in_a_logged_discord_url_is_redacted(captured: io.StringIO) -> None:
    logs.configure(settings_with_secrets(), stream=captured)
    url = "https://discord.com/api/v10/webhooks/1111/aW50ZXJhY3Rpb246MTIzOnNlY3JldA/messages/1"
    # discord.py's own words when a webhook call is rate limited: at WARNING, URL and all.
    logging.getLogger("discord.http").warning(
        "We are being rate limited. %s %s responded with 429. Retrying in %.2f seconds.",
        "PATCH",
        url,
        0.5,
    )
    text = captured.getvalue()
    assert "PATCH https://discord.com/api/v10/webhooks/1111/***/messages/1 responded" in text
    assert "aW50ZXJhY3Rpb246MTIzOnNlY3JldA" not in text


async def test_discord_logs_carry_no_interaction_token_or_prompt_even_at_debug(
    captured: io.StringIO, flow: FakeFlowServer, store: AnyStore
) -> None:
    logs.configure(settings_with_secrets(), stream=captured)
    async with FakeDiscordServer(token=DISCORD_TOKEN) as dc:
        with dc.patch_discord():
            bot = await start_bot(dc, flow, store)
            try:
                inter = await dc.slash_command(
                    "imagine", {"prompt": "my private birthday plan"}, user_id=USER
                )
                await dc.wait_for(on_original(inter, files=True))
            finally:
                await bot.stop()
    text = captured.getvalue()
    assert "queued" in text  # the bot's own lines are there
    assert inter.token not in text
    assert "my private birthday plan" not in text
    assert_no_secret(text, DISCORD_TOKEN)


async def test_an_uncaught_exception_anywhere_prints_no_secret(tmp_path: Path) -> None:
    """Tracebacks that don't go through a logger: the main thread, a thread, a lost task."""
    script = textwrap.dedent(
        """
        import asyncio, gc, threading
        from bot import logs
        from bot.config import Settings

        settings = Settings.from_env()
        logs.configure(settings)
        token = settings.useapi_token.reveal()

        def in_a_thread():
            raise RuntimeError(f"thread saw {token}")

        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()

        async def lost():
            raise RuntimeError(f"task saw {token}")

        async def main():
            asyncio.get_running_loop().create_task(lost())
            await asyncio.sleep(0.05)

        asyncio.run(main())
        gc.collect()
        raise RuntimeError(f"main saw https://api.example/v1?token={token}")
        """
    )
    code, out = await run(
        "-c", script, env={"USEAPI_TOKEN": USEAPI_TOKEN, "BOT_LOG_LEVEL": "INFO"}, cwd=tmp_path
    )
    assert code == 1
    for where in ("thread saw ***", "task saw ***", "main saw https://api.example/v1?token=***"):
        assert where in out, out
    assert_no_secret(out, USEAPI_TOKEN)
