"""The discord.py client: intents, the command tree, and set-up before the gateway connects.

Handlers reach the service through it (``interaction.client``, typed as
``interactions.HasService``); it tells its front end when it is ready.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import discord
from discord import app_commands
from discord.http import Route

from bot.core.people import DISCORD, UserKey
from bot.core.ports import Parking
from bot.core.service.api import BotApi
from bot.frontends.discord import commands, interactions, onboarding
from bot.frontends.discord.buttons import (
    ExampleButton,
    HistoryPage,
    ResultButton,
    SettingSelect,
    UnlinkButton,
)
from bot.frontends.discord.server import ServerChannels, ServerSelect, ServerToggle
from bot.frontends.discord.status import LiveInteractions
from bot.frontends.discord.translator import CommandTranslator

log = logging.getLogger(__name__)

# The fields that define a command; the rest of what Discord returns is bookkeeping (ids,
# versions) or defaults, which are dropped on both sides before comparing.
_DEFINING = frozenset(
    {
        "type",
        "name",
        "description",
        "options",
        "choices",
        "value",
        "required",
        "min_value",
        "max_value",
        "min_length",
        "max_length",
        "autocomplete",
        "channel_types",
        "contexts",
        "integration_types",
        "name_localizations",
        "description_localizations",
    }
)
_SETS = frozenset({"contexts", "integration_types", "channel_types"})


class BananaClient(discord.Client):
    def __init__(
        self,
        service: BotApi,
        live: LiveInteractions,
        parking: Parking,
        *,
        on_ready: Callable[[], None],
        dev_guild: int | None,
        guild_ready_timeout: float,
        **sharding: Any,
    ) -> None:
        # Slash commands, components and modals arrive as interactions, which need no intent;
        # `guilds` keeps the guild cache (upload limits). Nothing privileged is asked for.
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            intents=intents,
            guild_ready_timeout=guild_ready_timeout,
            max_messages=None,
            chunk_guilds_at_startup=False,
            allowed_mentions=discord.AllowedMentions.none(),
            **sharding,
        )
        self.service = service
        self.live = live
        self.parking = parking  # where upscales were posted, to point to them again
        self._on_ready = on_ready
        self.tree: app_commands.CommandTree[BananaClient] = _Tree(
            self,
            # Every command works in servers, in DMs with the bot and, installed by a user,
            # in their other DMs and group chats.
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=True
            ),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
        )
        for command in commands.build(service.models):
            self.tree.add_command(command)
        self.tree.error(_on_command_error)
        self._dev_guild = discord.Object(dev_guild) if dev_guild else None

    async def setup_hook(self) -> None:
        # Runs after login, before the gateway connects: a button pressed while we were away
        # arrives only after this, so the item classes are always registered in time.
        await self.tree.set_translator(CommandTranslator())
        self.add_dynamic_items(
            ResultButton,
            SettingSelect,
            ExampleButton,
            ServerToggle,
            ServerSelect,
            ServerChannels,
            HistoryPage,
            UnlinkButton,
        )
        try:
            await sync_if_changed(self, self._dev_guild)
        except discord.HTTPException:
            log.exception("could not sync the slash commands; keeping the ones Discord has")

    async def on_ready(self) -> None:
        # Fired on every (re)connect; attaching again is harmless.
        self._on_ready()

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await onboarding.introduce(self, guild)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        # Beside the tree's own handling: alerts kept for an admin go out when they next use
        # the bot.
        self.service.seen(UserKey(DISCORD, str(interaction.user.id)))


class _Tree(app_commands.CommandTree["BananaClient"]):
    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        """Run before every command, in its task: a prompt's 3 s count from here (its first
        response is due, ``FirstResponse``); answer in the user's language."""
        command = interaction.command
        if command is not None and command.qualified_name in interactions.PROMPTS:
            interactions.FirstResponse.of(interaction)
        await interactions.read_in(interaction)
        return True


class ShardedBananaClient(BananaClient, discord.AutoShardedClient):
    """The same client over several gateway connections: ``shard_ids`` of ``shard_count``
    (``DISCORD_SHARD_IDS``, ``DISCORD_SHARD_COUNT``), the other shards in other processes."""


async def _on_command_error(
    interaction: discord.Interaction[Any], error: app_commands.AppCommandError
) -> None:
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    await interactions.on_error(interaction, original)


async def sync_if_changed(client: BananaClient, guild: discord.Object | None) -> bool:
    """Sync only when the commands differ from Discord's: creates are rate limited per day.

    With a development guild the commands go there (guild commands update at once, global ones
    take a while to reach every client).
    """
    tree, application_id = client.tree, client.application_id
    assert application_id is not None  # known once logged in, before setup_hook
    path = "/applications/{application_id}/commands"
    if guild is not None:
        tree.copy_global_to(guild=guild)
        path = "/applications/{application_id}/guilds/{guild_id}/commands"
    # Raw JSON, not tree.fetch_commands(): discord.py 2.7.1 reads "contexts" back shifted by
    # one bit (AppCommandContext._from_value), so its AppCommand never equals our own. With
    # the translations: Discord sends them only when asked (with_localizations).
    route = Route("GET", path, application_id=application_id, guild_id=getattr(guild, "id", 0))
    remote = await client.http.request(route, params={"with_localizations": "true"})
    translator = tree.translator
    assert translator is not None  # set in setup_hook
    local = [
        await command.get_translated_payload(tree, translator)
        for command in tree.get_commands(guild=guild)
    ]
    where = f"guild {guild.id}" if guild is not None else "global"
    if _canonical_set(local) == _canonical_set(remote):
        log.info("slash commands unchanged (%s); not syncing", where)
        return False
    await tree.sync(guild=guild)
    log.info("slash commands synced (%s): %d", where, len(local))
    return True


def _canonical_set(commands: Iterable[Mapping[str, Any]]) -> list[Any]:
    return sorted((_canonical(c) for c in commands), key=repr)


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: sorted(item) if key in _SETS else _canonical(item)
            for key, item in sorted(value.items())
            if key in _DEFINING and not _unset(item)
        }
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _unset(value: Any) -> bool:
    # Discord leaves out what is unset, or sends null/false/empty; 0 is a real value (min_value).
    return value is None or value is False or value in ("", [], {})
