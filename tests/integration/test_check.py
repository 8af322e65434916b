"""``python -m bot check`` against the local fakes: every ✓ and ✗, and never a secret."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.check import DISCORD_PERMISSIONS, Line, run_checks
from bot.config import Secret, Settings
from bot.core.i18n import LANGUAGES
from bot.store import StoreUrl
from bot.store.migrations import LATEST
from tests.fakes.discord_server import FakeDiscordServer
from tests.fakes.flow_server import FakeFlowServer
from tests.fakes.gemini_server import FakeGeminiServer
from tests.fakes.nbpro_server import FakeNbproServer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fakes.wireflow_server import DEFAULT_WORKFLOW, FakeWireflowServer

USEAPI = "user:42-useapi-secret"
TELEGRAM = "123456:telegram-secret"
DISCORD = "discord.secret.token"
GEMINI = "AIza-gemini-secret"
NBPRO = "sk-nbpro-secret"
WIREFLOW = "sk-wireflow-secret"
SECRETS = (USEAPI, TELEGRAM, DISCORD, GEMINI, NBPRO, WIREFLOW)


@dataclass
class World:
    flow: FakeFlowServer
    telegram: FakeTelegramServer
    discord: FakeDiscordServer
    gemini: FakeGeminiServer
    nbpro: FakeNbproServer
    wireflow: FakeWireflowServer
    settings: Settings

    def with_(self, **changes: object) -> Settings:
        return dataclasses.replace(self.settings, **changes)  # type: ignore[arg-type]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """Every service the bot can be configured for, each with its one right secret."""
    async with (
        FakeFlowServer(token=USEAPI, accounts=["alice@example.com", "bob@example.com"]) as flow,
        FakeTelegramServer(token=TELEGRAM) as telegram,
        FakeDiscordServer(token=DISCORD) as discord,
        FakeGeminiServer(api_key=GEMINI) as gemini,
        FakeNbproServer(api_key=NBPRO) as nbpro,
        FakeWireflowServer(api_key=WIREFLOW) as wireflow,
    ):
        settings = Settings(
            useapi_token=Secret(USEAPI),
            useapi_base_url=flow.base_url,
            telegram_token=Secret(TELEGRAM),
            telegram_api_url=telegram.root,
            discord_token=Secret(DISCORD),
            database=StoreUrl.parse(f"sqlite:///{tmp_path}/data/bot.sqlite3"),
            gemini_api_key=Secret(GEMINI),
            gemini_base_url=gemini.base_url,
            nbpro_api_key=Secret(NBPRO),
            nbpro_base_url=nbpro.base_url,
            wireflow_api_key=Secret(WIREFLOW),
            wireflow_base_url=wireflow.base_url,
            wireflow_workflow_id=DEFAULT_WORKFLOW,
        )
        with discord.patch_discord():
            yield World(flow, telegram, discord, gemini, nbpro, wireflow, settings)


def by_name(lines: list[Line]) -> dict[str, Line]:
    text = "\n".join(map(str, lines))
    for secret in SECRETS:
        assert secret not in text
    return {line.text.split(":", 1)[0]: line for line in lines}


async def test_everything_configured_and_right_is_all_ticks(world: World) -> None:
    lines = await run_checks(world.settings)
    assert [str(line)[0] for line in lines] == ["✓"] * 8
    checked = by_name(lines)
    assert list(checked) == [
        "store",
        "languages",
        "useapi.net",
        "telegram",
        "discord",
        "gemini",
        "nbpro",
        "wireflow",
    ]
    assert checked["store"].text.endswith(f"opens and takes writes; schema {LATEST}")
    assert checked["languages"].text == (
        f"languages: {', '.join(LANGUAGES)}; BOT_DEFAULT_LANGUAGE en"
    )
    assert checked["useapi.net"].text == (
        "useapi.net: 2 Google accounts can serve (alice@example.com, bob@example.com)"
    )
    assert checked["telegram"].text.startswith("telegram: logged in as @")
    assert checked["discord"].text.startswith("discord: logged in as FakeBot (id 2222)")
    assert "server installs on, user installs on" in checked["discord"].text
    assert (
        f"invite: https://discord.com/oauth2/authorize?client_id=1111&scope=bot+applications"
        f".commands&permissions={DISCORD_PERMISSIONS}"
    ) in checked["discord"].text
    assert checked["wireflow"].text == (
        f"wireflow: key accepted; workflow {DEFAULT_WORKFLOW} found; pictures users send and "
        "characters are refused until BOT_PUBLIC_URL and BOT_PUBLIC_LISTEN are set"
    )
    # Nothing but the login: no gateway session, nothing sent anywhere.
    assert world.discord.gateway_connections == []
    assert world.telegram.calls_of("sendMessage") == []


async def test_wireflow_says_where_the_pictures_users_send_are_served(world: World) -> None:
    settings = world.with_(
        public_url="https://bot.example.org/nano",
        http_listen=("127.0.0.1", 8080),
        public_listen=("127.0.0.1", 8081),
    )
    assert str(by_name(await run_checks(settings))["wireflow"]) == (
        f"✓ wireflow: key accepted; workflow {DEFAULT_WORKFLOW} found; pictures users send go "
        "as links under https://bot.example.org/nano/references/ (valid 1 h), served on "
        "BOT_PUBLIC_LISTEN 127.0.0.1:8081 alone"
    )


async def test_only_what_is_configured_is_checked(world: World) -> None:
    settings = world.with_(
        telegram_token=None,
        discord_token=None,
        gemini_api_key=None,
        nbpro_api_key=None,
        wireflow_api_key=None,
        wireflow_workflow_id=None,
    )
    assert list(by_name(await run_checks(settings))) == ["store", "languages", "useapi.net"]


async def test_without_a_useapi_token_the_roads_configured_are_checked_in_their_order(
    world: World,
) -> None:
    settings = world.with_(
        useapi_token=None, telegram_token=None, discord_token=None, provider_order=()
    )
    assert list(by_name(await run_checks(settings))) == [
        "store",
        "languages",
        "gemini",
        "nbpro",
        "wireflow",
    ]
    ordered = dataclasses.replace(settings, provider_order=("wireflow", "gemini"))
    assert list(by_name(await run_checks(ordered))) == ["store", "languages", "wireflow", "gemini"]


async def test_a_refused_useapi_token_says_where_to_get_it(world: World) -> None:
    world.flow.token = "another"
    [line] = [line for line in await run_checks(world.settings) if not line.ok]
    assert str(line) == (
        "✗ useapi.net: USEAPI_TOKEN was refused by useapi.net: copy your API token again "
        "(https://useapi.net/docs/start-here/setup-useapi) into USEAPI_TOKEN"
    )


async def test_no_linked_google_account_says_where_to_link_one(world: World) -> None:
    world.flow.accounts = []
    lines = by_name(await run_checks(world.settings))
    assert str(lines["useapi.net"]) == (
        "✗ useapi.net: no Google account is linked at useapi.net: link one at "
        "https://useapi.net/docs/start-here/setup-google-flow"
    )


async def test_unhealthy_accounts_are_named_with_their_health(world: World) -> None:
    world.flow.set_health("bob@example.com", "Session expired (596)")
    line = by_name(await run_checks(world.settings))["useapi.net"]
    assert not line.ok
    assert line.text == (
        "useapi.net: unhealthy at useapi.net: bob@example.com (Session expired (596)): renew the "
        "account's Google session at https://useapi.net/docs/start-here/setup-google-flow"
    )


async def test_an_account_in_useapi_accounts_that_is_not_linked_is_named(world: World) -> None:
    settings = world.with_(useapi_accounts=("alice@example.com", "carol@example.com"))
    line = by_name(await run_checks(settings))["useapi.net"]
    assert not line.ok
    assert "USEAPI_ACCOUNTS names carol@example.com, which useapi.net does not list" in line.text


async def test_an_unreachable_useapi_is_one_line(world: World) -> None:
    settings = world.with_(useapi_base_url="http://127.0.0.1:9/v1/google-flow")
    line = by_name(await run_checks(settings))["useapi.net"]
    assert not line.ok
    assert line.text.startswith("useapi.net: useapi.net did not answer GET /accounts")
    assert line.text.endswith("check USEAPI_BASE_URL and this machine's network")


async def test_refused_platform_tokens_are_one_line_each(world: World) -> None:
    settings = world.with_(
        telegram_token=Secret("654321:wrong-telegram"), discord_token=Secret("wrong.discord")
    )
    lines = by_name(await run_checks(settings))
    assert str(lines["telegram"]) == (
        "✗ telegram: TELEGRAM_TOKEN was refused by Telegram: check it, or get a new one from "
        "@BotFather (/token)"
    )
    assert str(lines["discord"]).startswith(
        "✗ discord: DISCORD_TOKEN was refused by Discord: reset it at "
    )
    for line in map(str, lines.values()):
        assert "wrong-telegram" not in line
        assert "wrong.discord" not in line


async def test_refused_provider_keys_and_a_missing_workflow(world: World) -> None:
    settings = world.with_(
        gemini_api_key=Secret("AIza-wrong"),
        nbpro_api_key=Secret("sk-wrong"),
        wireflow_workflow_id="no-such-workflow",
    )
    lines = by_name(await run_checks(settings))
    assert str(lines["gemini"]) == "✗ gemini: GEMINI_API_KEY was refused: check it"
    assert str(lines["nbpro"]) == "✗ nbpro: NBPRO_API_KEY was refused: check it"
    assert str(lines["wireflow"]).startswith("✗ wireflow: 404: ")
    settings = world.with_(wireflow_api_key=Secret("sk-wrong"))
    assert str(by_name(await run_checks(settings))["wireflow"]) == (
        "✗ wireflow: WIREFLOW_API_KEY was refused: check it"
    )


async def test_a_store_that_cannot_be_made_says_what_to_do(world: World, tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    settings = world.with_(
        database=StoreUrl.parse(f"sqlite:///{tmp_path}/not-a-folder/bot.sqlite3")
    )
    line = by_name(await run_checks(settings))["store"]
    assert not line.ok
    assert "its folder can't be made" in line.text


async def test_a_file_that_is_not_a_store_says_what_to_do(world: World, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a database, but long enough to be read as one " * 40)
    settings = world.with_(database=StoreUrl.parse(f"sqlite:///{tmp_path}/notes.txt"))
    line = by_name(await run_checks(settings))["store"]
    assert not line.ok
    assert "it is not a SQLite database, or it is damaged" in line.text


async def test_a_postgresql_store_is_checked_the_same_way(world: World, postgres_url: str) -> None:
    line = by_name(await run_checks(world.with_(database=StoreUrl.parse(postgres_url))))["store"]
    assert line.ok
    assert line.text.endswith(f"opens and takes writes; schema {LATEST}")
