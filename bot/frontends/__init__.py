"""The front ends: Discord, Telegram and the console, each on the same service (``BotApi``).

Parallel things have parallel names on both chat platforms: ``frontend`` (lifecycle: build,
run, attach when ready), ``commands``, ``buttons``, ``notifier`` (the core's ``Notifier``),
``delivery`` (sending a final answer), ``status`` (a job's live status message), ``media``
(images within the platform's limits) and ``views`` (the core's presenters as the platform's
widgets, and the platform's own wording).
"""
