"""The roads to Nano Banana, each the only module that knows its wire format.

- ``flow``: the useapi.net Google Flow API: several Google accounts behind one token, uploads,
  a native upscale, characters.
- ``gemini``: the official Gemini API (``generateContent`` with image output), key in a header.
- ``nbpro``: the nano-banana-pro.net reseller, one synchronous call, image URLs back.
- ``wireflow``: Wireflow's asynchronous workflow executions, submitted and resumed
  (``wireflow_messages``: what those executions look like on the wire).

Each implements ``bot.core.providers.ImageProvider`` (Flow also ``Pooled``, ``Uploader``,
``Upscaler`` and ``CharacterMaker``; Wireflow ``Resumable``); ``bot.roads`` builds them from the
settings.
All raise the errors of ``bot.core.upstream``. What they share: ``http`` (bounded exchanges,
deadlines, the client shape), ``media`` (fetching an image link, contained) and ``plumbing``
(timeouts, the parallel fan-out, a per-minute gate).
"""
