"""Small talk: a short message in a private chat that is most likely not a picture to draw.

"hi", "thanks!", "ok", "👍" sent to a bot that draws every message would cost four images each;
such a message is asked about first. The rule is kept small and predictable: a message is
chatter when it has no word at all (emoji, punctuation), or when it is at most three words, all
of them greetings, thanks or acknowledgements from the list below, in a few languages. Anything
else, however short ("cat", "a fox"), is a prompt.
"""

from __future__ import annotations

import re

MAX_WORDS = 3
_LISTED = """
    hi hello hey hiya yo sup hallo hola ola olá salut bonjour ciao servus moin
    привет здравствуйте хай 你好 您好 こんにちは 안녕 안녕하세요 merhaba namaste
    thanks thank thx ty tnx cheers merci danke gracias grazie obrigado obrigada
    спасибо спс дякую 谢谢 ありがとう 감사합니다 teşekkürler
    ok okay k kk okey oki alright fine cool nice great good awesome wow yes yeah yep no nope
    ок окей хорошо да нет ладно 好 はい
    lol lmao haha hahaha xd
    bye goodbye cya пока night morning evening good you very much so a lot
    test testing
"""
_WORDS = frozenset(_LISTED.split())
_WORD = re.compile(r"\w+")


def is_chatter(text: str) -> bool:
    """Whether ``text`` reads as small talk rather than a description of a picture."""
    words = _WORD.findall(text.lower())
    return not words or (len(words) <= MAX_WORDS and all(word in _WORDS for word in words))
