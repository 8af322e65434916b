"""The commands in each user's language: discord.py's ``app_commands.Translator`` gives Discord
every shipped language's descriptions (and the context menus' names) when the tree syncs.

The names people type stay as they are (``bot/locales/TRANSLATING.md``): in a server whose
members read different languages they type the same ``/imagine``, and a refusal that names a
command or an option (``/settings``, ``model``) names what each of them sees. A context menu's
name is read from the Apps menu, never typed: it is translated.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.core import i18n

log = logging.getLogger(__name__)

# Discord's caps: a name at most 32 characters, a description at most 100.
_LIMITS = {Where.command_name: 32, Where.choice_name: 100}
_TYPED = (Where.group_name, Where.parameter_name)


class CommandTranslator(app_commands.Translator):
    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """``string`` in ``locale``'s language; None (Discord shows the English) for a name
        people type, a language not shipped, or a message not translated."""
        typed = context.location is Where.command_name and not isinstance(
            context.data, app_commands.ContextMenu
        )
        code = i18n.pick(locale.value)
        if typed or context.location in _TYPED or code in (None, i18n.DEFAULT):
            return None
        assert code is not None
        # A sentence with parameters comes as itself (``locale_str``); discord.py makes a plain
        # string of the others, their English words: the message they were marked with.
        message = string.message
        text = message if isinstance(message, i18n.Text) else i18n.Text(message)
        words = i18n.language(code).render(text)
        if words == str(string.message):
            return None
        limit = _LIMITS.get(context.location, 100)
        if len(words) > limit:  # Discord would refuse the whole sync for it
            log.warning("%s: %r is longer than Discord takes (%d)", code, words, limit)
            return None
        return words
