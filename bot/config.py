"""Settings from the environment (and ``.env``), validated once at start.

Every variable is listed, with a comment, in ``.env.example``. Tokens are held as ``Secret`` so
that no repr, log line or error message can show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.core import i18n, models_file
from bot.core.models_table import (
    MAX_COUNT,
    MIN_COUNT,
    PROVIDERS,
    UPSCALE_SIZES,
    ModelTable,
    ModelTableError,
)
from bot.core.people import DISCORD, TELEGRAM, UserKey
from bot.core.policy import MAX_PROMPT_CHARS, Defaults, Limits, Tuning
from bot.env import (
    DEFAULT_DATABASE,
    PLATFORMS,
    ConfigError,
    Env,
    Secret,
    blocked_words,
    choice,
    database,
    environment,
    https_url,
    language,
    listen,
    log_level,
    media_hosts,
    public_url,
    setting,
    shards,
    webhook_secret,
)
from bot.providers import gemini, nbpro, wireflow
from bot.providers.flow import DEFAULT_BASE_URL
from bot.providers.media import DEFAULT_MEDIA_HOSTS
from bot.store.url import StoreUrl

__all__ = [
    "DEFAULT_DATABASE",
    "LOG_FORMATS",
    "PLATFORMS",
    "PUBLIC_TELEGRAM_API",
    "ConfigError",
    "Secret",
    "Settings",
    "setting",
]

LOG_FORMATS = ("text", "json")
# The Bot API's own root; another one is a local Bot API server (without its upload limits).
PUBLIC_TELEGRAM_API = "https://api.telegram.org"
# A host name, or "*." and a domain: ASCII (IDNA) labels, no scheme, port or path.


@dataclass(frozen=True)
class Settings:
    useapi_token: Secret | None = None
    useapi_base_url: str = DEFAULT_BASE_URL
    useapi_accounts: tuple[str, ...] = ()
    upstream_media_hosts: tuple[str, ...] = DEFAULT_MEDIA_HOSTS
    discord_token: Secret | None = None
    telegram_token: Secret | None = None
    telegram_api_url: str = PUBLIC_TELEGRAM_API
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: Secret | None = None
    telegram_webhook_listen: tuple[str, int] = ("0.0.0.0", 8443)  # noqa: S104 — a webhook must be reachable
    discord_dev_guild: int | None = None
    discord_shards: tuple[int, ...] | None = None  # None: every shard, in this process
    discord_shard_count: int | None = None
    platforms: tuple[str, ...] | None = None  # BOT_PLATFORMS; None: each with a token
    database: StoreUrl = DEFAULT_DATABASE  # prints with its password as ***
    admins: tuple[tuple[str, str], ...] = ()
    allowed_users: frozenset[str] = frozenset()
    allowed_chats: frozenset[str] = frozenset()
    models: ModelTable = field(default_factory=ModelTable.builtin)
    limits: Limits = field(default_factory=Limits)
    tuning: Tuning = field(default_factory=Tuning)
    defaults: Defaults = field(default_factory=Defaults)
    console_dir: Path = Path("images")
    log_level: str = "INFO"
    log_format: str = "text"
    default_language: str = i18n.DEFAULT  # for a reader whose language isn't shipped or known
    http_listen: tuple[str, int] | None = None
    public_url: str | None = None  # BOT_PUBLIC_URL, without a trailing slash
    public_listen: tuple[str, int] | None = None  # BOT_PUBLIC_LISTEN: where its links are served
    retention_days: int = 30  # 0: keep forever
    blocked_words: tuple[str, ...] = ()  # seeds the admins' list (lower case, single spaces)
    # The other roads to the models (the first is useapi_token's Google Flow).
    gemini_api_key: Secret | None = None
    gemini_base_url: str = gemini.DEFAULT_BASE_URL
    gemini_concurrency: int = gemini.DEFAULT_LIMITS.concurrency or 8
    gemini_requests_per_minute: int = gemini.DEFAULT_LIMITS.requests_per_minute or 20
    nbpro_api_key: Secret | None = None
    nbpro_base_url: str = nbpro.DEFAULT_BASE_URL
    nbpro_plan: str = "standard"
    wireflow_api_key: Secret | None = None
    wireflow_base_url: str = wireflow.DEFAULT_BASE_URL
    wireflow_workflow_id: str | None = None
    wireflow_plan: str = "free"
    provider_order: tuple[str, ...] = ()  # BOT_PROVIDERS; empty: every one configured

    @property
    def providers(self) -> tuple[str, ...]:
        """The roads to use, in order: BOT_PROVIDERS, else every one whose key is set."""
        keys = {
            "flow": self.useapi_token,
            "gemini": self.gemini_api_key,
            "nbpro": self.nbpro_api_key,
            "wireflow": self.wireflow_api_key,
        }
        return self.provider_order or tuple(p for p in PROVIDERS if keys[p] is not None)

    @property
    def receiving(self) -> tuple[str, ...]:
        """The platforms whose users this process hears (``BOT_PLATFORMS``); the others with a
        token set only get answers delivered from here."""
        if self.platforms is not None:
            return self.platforms
        tokens = {DISCORD: self.discord_token, TELEGRAM: self.telegram_token}
        return tuple(platform for platform in PLATFORMS if tokens[platform] is not None)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        env_file: Path | None = Path(".env"),
    ) -> Settings:
        """Read and check every setting; the process environment wins over ``.env``."""
        return _parse(Env(environment(environ, env_file)))


# Each road by the setting that enables it.
_ROAD_KEYS = {
    "flow": "USEAPI_TOKEN",
    "gemini": "GEMINI_API_KEY",
    "nbpro": "NBPRO_API_KEY",
    "wireflow": "WIREFLOW_API_KEY",
}


def _roads(env: Env) -> tuple[str, ...]:
    """BOT_PROVIDERS, each of its roads configured; else every road whose key is set."""
    configured = [road for road in PROVIDERS if env.text(_ROAD_KEYS[road])]
    if not configured:
        raise ConfigError(
            "no image provider is configured: USEAPI_TOKEN is not set (the useapi.net Google "
            "Flow API), nor GEMINI_API_KEY, NBPRO_API_KEY, or WIREFLOW_API_KEY with "
            "WIREFLOW_WORKFLOW_ID: set at least one in the environment or .env"
        )
    raw = env.text("BOT_PROVIDERS")
    if not raw:
        return tuple(configured)
    order = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    for road in order:
        if road not in PROVIDERS:
            raise ConfigError(f"BOT_PROVIDERS: {road!r} is not one of {', '.join(PROVIDERS)}")
        if road not in configured:
            raise ConfigError(f"BOT_PROVIDERS names {road}, but {_ROAD_KEYS[road]} is not set")
    return order


def _models(env: Env, roads: tuple[str, ...]) -> ModelTable:
    """The model table (BOT_MODELS_FILE over the built-in one) as these roads serve it."""
    path = env.text("BOT_MODELS_FILE")
    try:
        models = models_file.load(Path(path) if path else None).serving(roads)
    except ModelTableError as exc:
        raise ConfigError(f"BOT_MODELS_FILE: {exc}") from exc
    default_model = env.text("BOT_DEFAULT_MODEL")
    if default_model:
        spec = models.resolve(default_model)
        if spec is None:
            raise ConfigError(
                f"BOT_DEFAULT_MODEL {default_model!r} is not a known model of the configured "
                f"providers; use one of {', '.join(models.ids())}"
            )
        models = ModelTable(models.models, spec.id)
    return models


def _parse(env: Env) -> Settings:
    roads = _roads(env)
    models = _models(env, roads)

    base_min = Tuning()
    tuning = Tuning(
        account_min_concurrency=env.number(
            "BOT_ACCOUNT_MIN_CONCURRENCY", base_min.account_min_concurrency, int, 1
        ),
        account_max_concurrency=env.number(
            "BOT_ACCOUNT_MAX_CONCURRENCY", base_min.account_max_concurrency, int, 1
        ),
        retry_min_seconds=env.number("BOT_RETRY_MIN_SECONDS", base_min.retry_min_seconds, float, 0),
        retry_max_seconds=env.number("BOT_RETRY_MAX_SECONDS", base_min.retry_max_seconds, float, 0),
        job_deadline_seconds=env.number(
            "BOT_JOB_DEADLINE_SECONDS", base_min.job_deadline_seconds, float, 1
        ),
        generation_timeout_seconds=env.number(
            "BOT_GENERATION_TIMEOUT_SECONDS", base_min.generation_timeout_seconds, float, 1
        ),
        moderation_fallback=env.flag("BOT_MODERATION_FALLBACK", base_min.moderation_fallback),
        accounts_refresh_seconds=env.number(
            "BOT_ACCOUNTS_REFRESH_SECONDS", base_min.accounts_refresh_seconds, float, 10
        ),
    )
    if tuning.account_max_concurrency < tuning.account_min_concurrency:
        raise ConfigError("BOT_ACCOUNT_MAX_CONCURRENCY must be ≥ BOT_ACCOUNT_MIN_CONCURRENCY")

    base_limits = Limits()
    limits = Limits(
        max_prompt_chars=env.number("BOT_MAX_PROMPT_CHARS", base_limits.max_prompt_chars, int, 1),
        max_image_bytes=int(
            env.number("BOT_MAX_IMAGE_MB", base_limits.max_image_bytes / 2**20, float, 0.1) * 2**20
        ),
        max_image_pixels=env.number(
            "BOT_MAX_IMAGE_PIXELS", base_limits.max_image_pixels, int, 1024
        ),
        queued_per_user=env.number("BOT_QUEUED_PER_USER", base_limits.queued_per_user, int, 1),
        running_per_user=env.number("BOT_RUNNING_PER_USER", base_limits.running_per_user, int, 1),
        daily_images_per_user=env.number(
            "BOT_DAILY_IMAGES_PER_USER", base_limits.daily_images_per_user, int, 0
        ),
    )
    if limits.max_prompt_chars > MAX_PROMPT_CHARS:
        raise ConfigError(
            f"BOT_MAX_PROMPT_CHARS must be at most {MAX_PROMPT_CHARS} (the most Discord's prompt "
            f"forms hold; a Telegram message holds 4096), got {env.text('BOT_MAX_PROMPT_CHARS')!r}"
        )

    base_defaults = Defaults()
    defaults = Defaults(
        aspect_ratio=env.text("BOT_DEFAULT_ASPECT_RATIO", base_defaults.aspect_ratio),
        count=env.number("BOT_DEFAULT_COUNT", base_defaults.count, int, 1),
        upscale_resolution=env.text(
            "BOT_DEFAULT_UPSCALE_RESOLUTION", base_defaults.upscale_resolution
        ).lower(),
    )
    if not models.default.accepts_ratio(defaults.aspect_ratio, with_references=False):
        raise ConfigError(
            f"BOT_DEFAULT_ASPECT_RATIO {defaults.aspect_ratio!r} is not one of "
            f"{', '.join(models.default.aspect_ratios)}"
        )
    if not MIN_COUNT <= defaults.count <= MAX_COUNT:
        raise ConfigError(f"BOT_DEFAULT_COUNT must be between {MIN_COUNT} and {MAX_COUNT}")
    if defaults.upscale_resolution not in UPSCALE_SIZES:
        raise ConfigError(f"BOT_DEFAULT_UPSCALE_RESOLUTION must be {' or '.join(UPSCALE_SIZES)}")

    wireflow_key = env.secret("WIREFLOW_API_KEY")
    wireflow_workflow = env.text("WIREFLOW_WORKFLOW_ID") or None
    if (wireflow_key is None) != (wireflow_workflow is None):
        raise ConfigError(
            "WIREFLOW_API_KEY and WIREFLOW_WORKFLOW_ID go together: set both (the workflow id is "
            "in the workflow's URL at wireflow.ai), or neither"
        )

    http = listen("BOT_HTTP_LISTEN", raw) if (raw := env.text("BOT_HTTP_LISTEN")) else None
    public = _public(env, roads, http)

    shard_count = env.number("DISCORD_SHARD_COUNT", None, int, 1)
    shard_ids = shards(env.text("DISCORD_SHARD_IDS"), shard_count)
    return Settings(
        useapi_token=env.secret("USEAPI_TOKEN"),
        useapi_base_url=env.text("USEAPI_BASE_URL", Settings.useapi_base_url).rstrip("/"),
        useapi_accounts=tuple(
            a.strip() for a in env.text("USEAPI_ACCOUNTS").split(",") if a.strip()
        ),
        upstream_media_hosts=media_hosts(env.text("BOT_UPSTREAM_MEDIA_HOSTS")),
        discord_token=env.secret("DISCORD_TOKEN"),
        telegram_token=env.secret("TELEGRAM_TOKEN"),
        telegram_api_url=env.text("TELEGRAM_API_URL", Settings.telegram_api_url).rstrip("/"),
        telegram_webhook_url=https_url(env.text("TELEGRAM_WEBHOOK_URL")),
        telegram_webhook_secret=webhook_secret(env.secret("TELEGRAM_WEBHOOK_SECRET")),
        telegram_webhook_listen=listen(
            "TELEGRAM_WEBHOOK_LISTEN", env.text("TELEGRAM_WEBHOOK_LISTEN", "0.0.0.0:8443")
        ),
        discord_dev_guild=env.number("DISCORD_DEV_GUILD", None, int, 1),
        discord_shards=shard_ids,
        discord_shard_count=shard_count,
        platforms=_platforms(env),
        database=database(env.text("DATABASE_URL")),
        admins=tuple(env.ids("BOT_ADMINS")),
        allowed_users=frozenset(str(UserKey(*pair)) for pair in env.ids("BOT_ALLOWED_USERS")),
        allowed_chats=frozenset(str(UserKey(*pair)) for pair in env.ids("BOT_ALLOWED_CHATS")),
        models=models,
        limits=limits,
        tuning=tuning,
        defaults=defaults,
        console_dir=Path(env.text("BOT_CONSOLE_DIR", "images")),
        log_level=log_level(env.text("BOT_LOG_LEVEL", "INFO")),
        log_format=choice("BOT_LOG_FORMAT", env.text("BOT_LOG_FORMAT", "text"), LOG_FORMATS),
        default_language=language(env.text("BOT_DEFAULT_LANGUAGE", i18n.DEFAULT)),
        http_listen=http,
        public_url=public[0],
        public_listen=public[1],
        retention_days=env.number("BOT_RETENTION_DAYS", Settings.retention_days, int, 0),
        blocked_words=blocked_words(env.text("BOT_BLOCKED_WORDS")),
        gemini_api_key=env.secret("GEMINI_API_KEY"),
        gemini_base_url=env.text("GEMINI_BASE_URL", gemini.DEFAULT_BASE_URL).rstrip("/"),
        nbpro_api_key=env.secret("NBPRO_API_KEY"),
        nbpro_base_url=env.text("NBPRO_BASE_URL", nbpro.DEFAULT_BASE_URL).rstrip("/"),
        wireflow_api_key=wireflow_key,
        wireflow_base_url=env.text("WIREFLOW_BASE_URL", wireflow.DEFAULT_BASE_URL).rstrip("/"),
        wireflow_workflow_id=wireflow_workflow,
        gemini_concurrency=env.number("GEMINI_CONCURRENCY", Settings.gemini_concurrency, int, 1),
        gemini_requests_per_minute=env.number(
            "GEMINI_REQUESTS_PER_MINUTE", Settings.gemini_requests_per_minute, int, 1
        ),
        nbpro_plan=choice("NBPRO_PLAN", env.text("NBPRO_PLAN", "standard"), tuple(nbpro.PLANS)),
        wireflow_plan=choice(
            "WIREFLOW_PLAN", env.text("WIREFLOW_PLAN", "free"), tuple(wireflow.PLANS)
        ),
        provider_order=roads,
    )


def _public(
    env: Env, roads: tuple[str, ...], http: tuple[str, int] | None
) -> tuple[str | None, tuple[str, int] | None]:
    """BOT_PUBLIC_URL and BOT_PUBLIC_LISTEN, where its links are served: a listener of its own
    (never BOT_HTTP_LISTEN's, whose /healthz and /metrics name the accounts), set wherever a
    process makes links, so that an operator whose proxy sent /references/ to BOT_HTTP_LISTEN
    (where they were served before) learns at start that it must point at BOT_PUBLIC_LISTEN."""
    url = public_url(env.text("BOT_PUBLIC_URL"))
    raw = env.text("BOT_PUBLIC_LISTEN")
    address = listen("BOT_PUBLIC_LISTEN", raw) if raw else None
    if url is not None and address is None and "wireflow" in roads:
        raise ConfigError(
            "BOT_PUBLIC_URL is set but BOT_PUBLIC_LISTEN is not: set BOT_PUBLIC_LISTEN to the "
            f"host:port your proxy forwards {url} to (the pictures are served "
            "there alone; BOT_HTTP_LISTEN keeps /healthz and /metrics and serves no picture)"
        )
    if address is not None and address == http:
        raise ConfigError(
            "BOT_PUBLIC_LISTEN must not be BOT_HTTP_LISTEN's address: give it a port of its "
            "own, which is all your proxy reaches (/healthz and /metrics stay on "
            "BOT_HTTP_LISTEN)"
        )
    return url, address


def _platforms(env: Env) -> tuple[str, ...] | None:
    names = [n.strip().lower() for n in env.text("BOT_PLATFORMS").split(",") if n.strip()]
    if not names:
        return None
    if names == ["none"]:
        return ()
    for name in names:
        if name not in PLATFORMS:
            raise ConfigError(
                f"BOT_PLATFORMS: {name!r} is not a platform; use discord, telegram, both "
                "(comma-separated) or none"
            )
        if env.secret(f"{name.upper()}_TOKEN") is None:
            raise ConfigError(f"BOT_PLATFORMS names {name}, but {name.upper()}_TOKEN is not set")
    return tuple(dict.fromkeys(names))
