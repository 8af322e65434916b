"""Every sentence about characters (``/character``, @names in a prompt): what users read when
they make, share, use or lose one. The other shared sentences are in ``texts``.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.texts import quote


def bad_character_name(name: str, limit: int) -> str:
    return (
        f"{quote(name, 40) or 'That'} can't be a character's name: use a word of up to {limit} "
        "letters, digits, _ or -, starting with a letter, e.g. /character create Carol."
    )


def mixed_scripts(name: str) -> str:
    return (
        f"{quote(name, 40)} mixes letters of different alphabets (it could pass for another "
        "name): write it in one alphabet."
    )


def character_taken(name: str) -> str:
    return f"You already have a character named {name}: pick another name, or delete that one."


def character_count(count: int) -> str:
    return f"Send 1 or 2 pictures of the character with /character create (you sent {count})."


def too_many_owned(limit: int) -> str:
    return f"You have {limit} characters, the most one can keep: delete one first."


def no_character(name: str) -> str:
    return f"You have no character named {quote(name, 40)}: /character list shows yours."


def character_deleted(name: str) -> str:
    return f"Character {name} deleted."


def your_characters(names: Sequence[str]) -> str:
    return f"Your characters (write @name in a prompt): {', '.join(f'@{n}' for n in names)}"


def character_shared(name: str) -> str:
    return f"Character {name} is shared here: everyone here can write @{name} in a prompt."


def character_unshared(name: str) -> str:
    return f"Character {name} is no longer shared here."


def shared_name_taken(name: str) -> str:
    return f"A character named {name} is shared here already: rename yours to share it."


def not_shared(name: str) -> str:
    return f"No character named {quote(name, 40)} is shared here."


NOT_YOURS_TO_UNSHARE = "Only the character's owner or an admin here can stop sharing it."


def character_created(name: str) -> str:
    return f"Character {name} is ready: write @{name} in a prompt to use it."


CHARACTER_GONE = (
    "A character this prompt used was deleted since: write the prompt again with your characters."
)
NOT_YOUR_CHARACTER = (
    "That picture was drawn with someone else's character: only they can draw with it again."
)
CHARACTER_NOT_MADE = (
    "The image service couldn't make the character from those pictures. Try other pictures."
)
NO_CHARACTERS_YET = "You have no characters yet: send a picture with /character create <name>."


def forged_marker(marker: str) -> str:
    return f"{marker} is the bot's own marker: use a character by its name, like @carol."


def no_such_reference(number: int, references: int) -> str:
    if not references:
        return f"@{number} points at a reference image, but you sent none."
    return f"@{number} points at a reference image you didn't send: you sent {references}."


def no_characters_on(model: str) -> str:
    return f"{model} can't use characters: pick another model (--model 2 or --model pro)."


def too_many_characters(count: int, limit: int) -> str:
    return f"You used {count} characters; one prompt takes at most {limit}. Please use fewer."


def over_budget(pictures: int, references: int, model: str, limit: int) -> str:
    return (
        f"Your characters' {pictures} pictures and {references} reference images are more than "
        f"{model} takes ({limit}). Use fewer characters or references."
    )


def characters_note(used: Sequence[str], unknown: Sequence[str]) -> str:
    """What a result's caption says about the characters of its prompt."""
    lines = [f"Characters: {', '.join(used)}"] if used else []
    if unknown:
        lines.append(f"{', '.join(unknown)}: no character of that name, left as text.")
    return "\n".join(lines)
