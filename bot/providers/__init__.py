"""The roads to Nano Banana besides Flow, each the only module that knows its wire format.

- ``gemini``: the official Gemini API (``generateContent`` with image output), key in a header.
- ``nbpro``: the nano-banana-pro.net reseller, one synchronous call, image URLs back.
- ``wireflow``: Wireflow's asynchronous workflow executions, submitted and resumed.

Each implements ``bot.core.providers.ImageProvider`` (Wireflow also ``Resumable``) and raises
the errors of ``bot.core.upstream``. ``plumbing`` holds what the clients share; ``media`` fetches
a provider's image URL, contained (Flow's ``fifeUrl`` downloads are meant to move onto it).
"""
