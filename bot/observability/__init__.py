"""Health and metrics over HTTP (``BOT_HTTP_LISTEN``): ``GET /healthz`` and ``GET /metrics``.

``metrics.Metrics`` holds the metric families and is the core's ``Recorder``; ``server.serve``
runs the endpoints; ``health.ProbedHealth`` answers ``/healthz`` from the store and the upstream
until the service answers it itself.
"""
