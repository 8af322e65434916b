"""Provider settings: any one road is enough, BOT_PROVIDERS orders them, and the model table
is what the configured roads serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings

GEMINI = {"GEMINI_API_KEY": "AIza-gemini-secret"}
NBPRO = {"NBPRO_API_KEY": "sk-nbpro-secret"}
WIREFLOW = {"WIREFLOW_API_KEY": "sk-wireflow-secret", "WIREFLOW_WORKFLOW_ID": "wf_1"}
FLOW = {"USEAPI_TOKEN": "user:1-secret"}


def load(**env: str) -> Settings:
    return Settings.from_env(env, env_file=None)


@pytest.mark.parametrize(
    ("env", "road"), [(GEMINI, "gemini"), (NBPRO, "nbpro"), (WIREFLOW, "wireflow")]
)
def test_one_other_road_is_enough_without_a_useapi_token(env: dict[str, str], road: str) -> None:
    settings = load(**env)
    assert settings.useapi_token is None
    assert settings.providers == (road,)
    # The table holds only what that road serves; the default is a model it serves.
    assert all(spec.offer(road) for spec in settings.models.models)
    assert settings.models.default.offer(road) is not None
    assert "nano-banana-2-lite" not in settings.models.ids()  # Flow's own model


def test_no_road_at_all_names_every_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        load(TELEGRAM_TOKEN="1:tg-tok1")
    message = str(caught.value)
    for name in ("USEAPI_TOKEN", "GEMINI_API_KEY", "NBPRO_API_KEY", "WIREFLOW_API_KEY"):
        assert name in message


def test_every_configured_road_in_the_documented_order_by_default() -> None:
    settings = load(**WIREFLOW, **NBPRO, **GEMINI, **FLOW)
    assert settings.providers == ("flow", "gemini", "nbpro", "wireflow")
    assert settings.models.default.id == "nano-banana-2-lite"


def test_bot_providers_orders_them_and_leaves_out_the_rest() -> None:
    settings = load(**FLOW, **GEMINI, **NBPRO, BOT_PROVIDERS="gemini, flow")
    assert settings.providers == ("gemini", "flow")
    spec = settings.models.resolve("nano-banana-2")
    assert spec is not None
    assert [o.provider for o in spec.offers] == ["gemini", "flow"]


def test_bot_providers_naming_an_unknown_or_unconfigured_road_is_refused() -> None:
    with pytest.raises(ConfigError, match="'midjourney' is not one of"):
        load(**FLOW, BOT_PROVIDERS="flow,midjourney")
    with pytest.raises(ConfigError, match="names gemini, but GEMINI_API_KEY is not set"):
        load(**FLOW, BOT_PROVIDERS="flow,gemini")


def test_a_wireflow_key_without_its_workflow_is_refused() -> None:
    with pytest.raises(ConfigError, match="WIREFLOW_WORKFLOW_ID"):
        load(WIREFLOW_API_KEY="sk-wireflow-secret")


def test_plans_are_checked() -> None:
    with pytest.raises(ConfigError, match="NBPRO_PLAN"):
        load(**NBPRO, NBPRO_PLAN="gold")
    with pytest.raises(ConfigError, match="WIREFLOW_PLAN"):
        load(**WIREFLOW, WIREFLOW_PLAN="gold")
    with pytest.raises(ConfigError, match="GEMINI_REQUESTS_PER_MINUTE"):
        load(**GEMINI, GEMINI_REQUESTS_PER_MINUTE="0")


def test_a_default_model_the_roads_do_not_serve_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a known model of the configured providers"):
        load(**GEMINI, BOT_DEFAULT_MODEL="lite")


def test_provider_keys_never_show() -> None:
    settings = load(**GEMINI, **NBPRO, **WIREFLOW)
    shown = repr(settings) + str(settings)
    for secret in ("AIza-gemini-secret", "sk-nbpro-secret", "sk-wireflow-secret"):
        assert secret not in shown


def test_the_models_file_marks_a_model_without_characters_and_only_flow_with(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models.toml"
    models.write_text("[models.nano-banana-2]\ncharacters = false\n")
    settings = load(**FLOW, BOT_MODELS_FILE=str(models))
    spec = settings.models.resolve("nano-banana-2")
    assert spec is not None
    assert not spec.characters
    added = tmp_path / "added.toml"
    added.write_text('[models.nano-banana-3]\nlabel = "Nano Banana 3"\n')
    three = load(**FLOW, BOT_MODELS_FILE=str(added)).models.resolve("nano-banana-3")
    assert three is not None
    assert three.characters  # a new Flow model takes them, as Flow's models do
    models.write_text("[models.nano-banana-2.gemini]\ncharacters = true\n")
    with pytest.raises(ConfigError, match="only Flow has characters"):
        load(**FLOW, **GEMINI, BOT_MODELS_FILE=str(models))
