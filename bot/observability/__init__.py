"""Health and metrics over HTTP (``BOT_HTTP_LISTEN``): ``GET /healthz`` and ``GET /metrics``.

``metrics.Metrics`` holds the metric families and is the core's ``Recorder``; ``server.serve``
runs the endpoints. The service answers both (``bot.core.monitoring``'s ``HealthSource`` and
``SnapshotSource``): it knows its accounts' health and its queue as it goes.
"""
