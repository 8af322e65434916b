"""Every sentence about characters (``/character``, @names in a prompt): what users read when
they make, share, use or lose one. The other shared sentences are in ``texts``.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.i18n import Text, _, _n, join
from bot.core.texts import quote


def bad_character_name(name: str, limit: int) -> Text:
    # Any alphabet's letters and digits are accepted (one alphabet a name: ``mixed_scripts``).
    if not name:
        return _(
            "A character needs a name: one word of up to {limit} characters (letters of any "
            "one alphabet, digits, _ or -), starting with a letter, e.g. /character create Carol.",
            limit=limit,
        )
    return _(
        "{name} can't be a character's name: use one word of up to {limit} characters (letters "
        "of any one alphabet, digits, _ or -), starting with a letter, e.g. /character create "
        "Carol.",
        name=quote(name, 40),
        limit=limit,
    )


def mixed_scripts(name: str) -> Text:
    return _(
        "{name} mixes letters of different alphabets (it could pass for another name): write it "
        "in one alphabet.",
        name=quote(name, 40),
    )


def character_taken(name: str) -> Text:
    return _(
        "You already have a character named {name}: pick another name, or delete that one.",
        name=name,
    )


def character_count(count: int) -> Text:
    return _(
        "Send 1 or 2 pictures of the character with /character create (you sent {count}).",
        count=count,
    )


def too_many_owned(limit: int) -> Text:
    return _n(
        "You have {limit} character, the most one can keep: delete one first.",
        "You have {limit} characters, the most one can keep: delete one first.",
        limit,
        limit=limit,
    )


def no_character(name: str) -> Text:
    return _(
        "You have no character named {name}: /character list shows yours.", name=quote(name, 40)
    )


def character_deleted(name: str) -> Text:
    return _("Character {name} deleted.", name=name)


def your_characters(names: Sequence[str]) -> Text:
    return _(
        "Your characters (write @name in a prompt): {names}",
        names=join(", ", [f"@{n}" for n in names]),
    )


def character_shared(name: str) -> Text:
    return _(
        "Character {name} is shared here: everyone here can write @{name} in a prompt.", name=name
    )


def character_unshared(name: str) -> Text:
    return _("Character {name} is no longer shared here.", name=name)


def shared_name_taken(name: str) -> Text:
    return _(
        "A character named {name} is shared here already: rename yours to share it.", name=name
    )


def not_shared(name: str) -> Text:
    return _("No character named {name} is shared here.", name=quote(name, 40))


NOT_YOURS_TO_UNSHARE = _("Only the character's owner or an admin here can stop sharing it.")


def character_created(name: str) -> Text:
    return _("Character {name} is ready: write @{name} in a prompt to use it.", name=name)


CHARACTER_GONE = _(
    "A character this prompt used was deleted since: write the prompt again with your characters."
)
NOT_YOUR_CHARACTER = _(
    "That picture was drawn with someone else's character: only they can draw with it again."
)
CHARACTER_NOT_MADE = _(
    "The image service couldn't make the character from those pictures. Try other pictures."
)
NO_CHARACTERS_YET = _("You have no characters yet: send a picture with /character create <name>.")


def forged_marker(marker: str) -> Text:
    return _(
        "{marker} is the bot's own marker: use a character by its name, like @carol.",
        marker=marker,
    )


def no_such_reference(number: int, references: int) -> Text:
    if not references:
        return _("@{number} points at a reference image, but you sent none.", number=number)
    return _n(
        "@{number} points at a reference image you didn't send: you sent {count}.",
        "@{number} points at a reference image you didn't send: you sent {count}.",
        references,
        number=number,
        count=references,
    )


# Only a road that fetches pictures from links (Wireflow) takes a character, where the bot has
# no public address to link its pictures from: the model is not at fault; the operator's fix is
# named, and the user's way round.
CHARACTERS_NEED_ADDRESS = _(
    "The image service here fetches a character's pictures only from a web address, and this "
    "bot has none yet: its operator can give it one (BOT_PUBLIC_URL, see the README). Until "
    "then, describe the person in your prompt."
)


def no_characters_on(model: str) -> Text:
    return _(
        "{model} can't use characters: pick another model (--model 2 or --model pro).",
        model=model,
    )


def too_many_characters(count: int, limit: int) -> Text:
    return _n(
        "You used {count} character; one prompt takes at most {limit}. Please use fewer.",
        "You used {count} characters; one prompt takes at most {limit}. Please use fewer.",
        count,
        count=count,
        limit=limit,
    )


def over_budget(pictures: int, references: int, model: str, limit: int) -> Text:
    return _(
        "Your characters' {pictures} pictures and {references} reference images are more than "
        "{model} takes ({limit}). Use fewer characters or references.",
        pictures=pictures,
        references=references,
        model=model,
        limit=limit,
    )


def characters_note(used: Sequence[str], unknown: Sequence[str]) -> Text:
    """What a result's caption says about the characters of its prompt."""
    lines: list[str] = []
    if used:
        lines.append(_("Characters: {names}", names=join(", ", used)))
    if unknown:
        lines.append(
            _(
                "{names}: no character of that name, left as text.",
                names=join(", ", unknown),
            )
        )
    return join("\n", lines)
