"""``python -m bot check``: every configured token, provider and the store, one line each.

Each check does what the bot does at start, and nothing a user would see: it logs in over REST
only (no gateway, no polling), writes nothing it keeps, renders nothing paid. Every line is
``✓`` or ``✗`` and what to do; no line holds a secret (each is redacted like a log line).
Opening the store creates or migrates it, as starting the bot would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot import catalogues, roads
from bot.config import Settings
from bot.core import i18n
from bot.core.upstream import AuthError, UpstreamError
from bot.diagnosis import flow_accounts
from bot.logs import Redact, secrets_of
from bot.providers.flow import FlowClient
from bot.reference_links import LINK_SECONDS, PREFIX
from bot.store import StoreError, open_store

# Seconds each check may take: a service that hasn't answered by then is as good as down.
CHECK_TIMEOUT = 30.0
# The permissions the bot needs in a server's channels (and threads): View Channel, Send
# Messages, Send Messages in Threads, Attach Files.
DISCORD_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 38) | (1 << 15)
DISCORD_PORTAL = "https://discord.com/developers/applications"


@dataclass(frozen=True)
class Line:
    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.text}"


async def run_checks(settings: Settings) -> list[Line]:
    """One line per configured thing, in a fixed order; the checks run side by side."""
    checks: list[tuple[str, Callable[[Settings], Awaitable[Line]]]] = [
        ("store", check_store),
        ("languages", check_languages),
    ]
    if "flow" in settings.providers:
        checks.append(("flow", check_flow))
    if settings.telegram_token is not None:
        checks.append(("telegram", check_telegram))
    if settings.discord_token is not None:
        checks.append(("discord", check_discord))
    checks += [(road, _road_check(road)) for road in settings.providers if road != "flow"]
    redact = Redact(secrets_of(settings), settings.database.redact)
    lines = await asyncio.gather(*(_bounded(name, check, settings) for name, check in checks))
    return [Line(line.ok, redact.text(line.text)) for line in lines]


async def _bounded(name: str, check: Callable[[Settings], Awaitable[Line]], s: Settings) -> Line:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check(s)
    except TimeoutError:
        return Line(False, f"{name}: no answer within {CHECK_TIMEOUT:g} s: check the network")


async def check_store(settings: Settings) -> Line:
    """Opens (and migrates) the store, writes a row and rolls it back, reads its version."""
    try:
        async with open_store(settings.database) as store:
            await store.probe_write()
            version = await store.schema_version()
    except StoreError as exc:
        return Line(False, f"store: {exc}")
    return Line(True, f"store: {settings.database} opens and takes writes; schema {version}")


async def check_languages(settings: Settings) -> Line:
    """Reads every shipped language's catalogue, as the bot does at start."""
    for code in i18n.LANGUAGES[1:]:
        try:
            await asyncio.to_thread(catalogues.read, code)
        except Exception as exc:  # unreadable, or a locale Babel doesn't know
            return Line(False, f"languages: {code}'s catalogue can't be read ({exc}): reinstall")
    return Line(
        True,
        f"languages: {', '.join(i18n.LANGUAGES)}; BOT_DEFAULT_LANGUAGE {settings.default_language}",
    )


async def check_flow(settings: Settings) -> Line:
    """``GET /accounts`` with the token: refused, no account linked, accounts unhealthy."""
    async with roads.client(settings, "flow") as flow:
        assert isinstance(flow, FlowClient)
        report = await flow_accounts(flow, settings.useapi_accounts)
    return Line(report.problem is None, f"useapi.net: {report.summary}")


async def check_telegram(settings: Settings) -> Line:
    """``getMe`` with the token."""
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    assert settings.telegram_token is not None
    api = settings.telegram_api_url
    bot = Bot(
        settings.telegram_token.reveal(),
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
    )
    try:
        async with bot:  # initialize() is getMe
            me = bot.bot
    except InvalidToken:  # its text quotes the token: never shown
        return Line(
            False,
            "telegram: TELEGRAM_TOKEN was refused by Telegram: check it, or get a new one "
            "from @BotFather (/token)",
        )
    except TelegramError as exc:
        return Line(False, f"telegram: {api} did not answer getMe ({exc}): check the network")
    return Line(True, f"telegram: logged in as @{me.username} (id {me.id})")


async def check_discord(settings: Settings) -> Line:
    """``GET /users/@me`` and the application's install settings, over REST: no gateway."""
    import aiohttp
    import discord
    from discord.http import HTTPClient

    assert settings.discord_token is not None
    http = HTTPClient(asyncio.get_running_loop())
    try:
        me = await http.static_login(settings.discord_token.reveal())
        app = await http.application_info()
    except discord.LoginFailure:
        return Line(
            False,
            f"discord: DISCORD_TOKEN was refused by Discord: reset it at {DISCORD_PORTAL} "
            "(your application → Bot → Reset Token) and set the new one",
        )
    except (discord.HTTPException, aiohttp.ClientError) as exc:
        return Line(False, f"discord: Discord did not answer ({exc}): check the network")
    finally:
        await http.close()
    contexts = app.get("integration_types_config") or {}
    installs = ", ".join(
        f"{kind} installs {'on' if key in contexts else 'off'}"
        for key, kind in (("0", "server"), ("1", "user"))
    )
    invite = (
        f"https://discord.com/oauth2/authorize?client_id={app['id']}"
        f"&scope=bot+applications.commands&permissions={DISCORD_PERMISSIONS}"
    )
    return Line(
        True,
        f"discord: logged in as {me['username']} (id {me['id']}); {installs}; invite: {invite}",
    )


# The setting holding each road's key, named when the road refuses it.
_KEYS = {"gemini": "GEMINI_API_KEY", "nbpro": "NBPRO_API_KEY", "wireflow": "WIREFLOW_API_KEY"}


def _road_check(road: str) -> Callable[[Settings], Awaitable[Line]]:
    async def check(settings: Settings) -> Line:
        client = roads.client(settings, road)
        assert not isinstance(client, FlowClient)  # Flow's check is its accounts' report
        line = await _provider(road, _KEYS[road], client)
        if road == "wireflow" and line.ok:
            return Line(True, f"{line.text}; {_pictures_by_link(settings)}")
        return line

    return check


def _pictures_by_link(settings: Settings) -> str:
    """How Wireflow gets the pictures users send (``BOT_PUBLIC_URL`` was checked on reading,
    and refused without ``BOT_PUBLIC_LISTEN``)."""
    if settings.public_url is None or settings.public_listen is None:
        return (
            "pictures users send and characters are refused until BOT_PUBLIC_URL and "
            "BOT_PUBLIC_LISTEN are set"
        )
    hours = LINK_SECONDS / 3600
    host, port = settings.public_listen
    return (
        f"pictures users send go as links under {settings.public_url}{PREFIX}/ (valid "
        f"{hours:g} h), served on BOT_PUBLIC_LISTEN {host}:{port} alone"
    )


class _Checkable(Protocol):
    async def check(self) -> str: ...

    async def aclose(self) -> None: ...


async def _provider(name: str, key: str, client: _Checkable) -> Line:
    """A provider's own ``check()``: its line, or what its error says to do."""
    try:
        return Line(True, await client.check())
    except AuthError:
        return Line(False, f"{name}: {key} was refused: check it")
    except UpstreamError as exc:
        return Line(False, f"{name}: {exc.status or 'no answer'}: {exc.detail}")
    finally:
        await client.aclose()
