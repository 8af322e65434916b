"""The configured roads to the models as clients, from the settings: each with its key, its
address, its plan's limits and the model table's offers for it."""

from __future__ import annotations

from bot.config import Settings
from bot.core.providers import ProviderLimits
from bot.providers.flow import FlowClient, FlowTimeouts
from bot.providers.gemini import GeminiClient
from bot.providers.nbpro import NbproClient
from bot.providers.plumbing import Timeouts
from bot.providers.wireflow import WireflowClient

Client = FlowClient | GeminiClient | NbproClient | WireflowClient


def client(settings: Settings, road: str) -> Client:
    """A client for ``road`` (one of ``settings.providers``); use it as ``async with``."""
    offers = settings.models.offers(road)
    # BOT_GENERATION_TIMEOUT_SECONDS bounds a render with its downloads on every road; Wireflow's
    # wait for its executions is its polling's own bound (a restart resumes it anyway).
    seconds = settings.tuning.generation_timeout_seconds
    timeouts = Timeouts(request=min(Timeouts.request, seconds), total=seconds)
    if road == "flow":
        assert settings.useapi_token is not None
        return FlowClient(
            settings.useapi_token.reveal(),
            settings.useapi_base_url,
            timeouts=FlowTimeouts(generate=settings.tuning.generation_timeout_seconds),
            media_hosts=settings.upstream_media_hosts,
            models=offers,
        )
    if road == "gemini":
        assert settings.gemini_api_key is not None
        limits = ProviderLimits(
            concurrency=settings.gemini_concurrency,
            requests_per_minute=settings.gemini_requests_per_minute,
        )
        return GeminiClient(
            settings.gemini_api_key.reveal(),
            settings.gemini_base_url,
            limits=limits,
            models=offers,
            timeouts=timeouts,
        )
    if road == "nbpro":
        assert settings.nbpro_api_key is not None
        return NbproClient(
            settings.nbpro_api_key.reveal(),
            settings.nbpro_base_url,
            plan=settings.nbpro_plan,
            models=offers,
            timeouts=timeouts,
        )
    if road == "wireflow":
        assert settings.wireflow_api_key is not None
        assert settings.wireflow_workflow_id is not None
        return WireflowClient(
            settings.wireflow_api_key.reveal(),
            settings.wireflow_workflow_id,
            settings.wireflow_base_url,
            plan=settings.wireflow_plan,
            models=offers,
            timeouts=timeouts,
        )
    raise ValueError(f"unknown provider {road!r}")
