"""Configuration, read once from the environment.

Every variable is documented in the README with its default. Both the gateway
and the action server call `Settings.from_env()` once at start-up and pass the
object down; nothing else reads `os.environ`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name, "")
    return int(raw) if raw.strip() else default


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name, "")
    return float(raw) if raw.strip() else default


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Prefix of every key this product writes (several counties, or parallel
    # test runs, can share one Redis server). See core/keys.py.
    redis_key_prefix: str = "ecobot:"
    rasa_url: str = "http://127.0.0.1:5005"
    action_url: str = "http://127.0.0.1:5055/webhook"
    gateway_host: str = "0.0.0.0"
    gateway_port: int = 8080
    wechat_token: str = ""
    wechat_appid: str = ""
    wechat_appsecret: str = ""
    wechat_encoding_aes_key: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    reply_budget_s: float = 4.0
    rasa_timeout_s: float = 30.0
    knowledge_dir: Path = field(default=PROJECT_ROOT / "knowledge")
    spool_dir: Path = field(default=PROJECT_ROOT / "var" / "spool")
    # Messages one sender may send per clock minute (bot/ratelimit.py).
    rate_limit_per_min: int = 20
    # Images uploaded from the web chat page, served at /uploads/{name}.
    upload_dir: Path = field(default=PROJECT_ROOT / "var" / "uploads")
    # Human mode (staff own the conversation) ends after this long without
    # staff activity; the bot then says it takes over again (bot/handoff.py).
    human_mode_ttl_s: float = 86400.0
    # Staff console deadlines, in Chinese working days (bot/staff/deadlines.py).
    complaint_accept_workdays: int = 1
    complaint_close_workdays: int = 15
    enquiry_reply_workdays: int = 1

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        d = cls()
        return cls(
            redis_url=env.get("REDIS_URL") or d.redis_url,
            redis_key_prefix=env.get("REDIS_KEY_PREFIX") or d.redis_key_prefix,
            rasa_url=(env.get("RASA_URL") or d.rasa_url).rstrip("/"),
            action_url=env.get("ACTION_ENDPOINT_URL") or d.action_url,
            gateway_host=env.get("GATEWAY_HOST") or d.gateway_host,
            gateway_port=_int(env, "GATEWAY_PORT", d.gateway_port),
            wechat_token=env.get("WECHAT_TOKEN", d.wechat_token),
            wechat_appid=env.get("WECHAT_APPID", d.wechat_appid),
            wechat_appsecret=env.get("WECHAT_APPSECRET", d.wechat_appsecret),
            wechat_encoding_aes_key=env.get("WECHAT_ENCODING_AES_KEY", d.wechat_encoding_aes_key),
            wechat_api_base=(env.get("WECHAT_API_BASE") or d.wechat_api_base).rstrip("/"),
            reply_budget_s=_float(env, "REPLY_BUDGET_S", d.reply_budget_s),
            rasa_timeout_s=_float(env, "RASA_TIMEOUT_S", d.rasa_timeout_s),
            knowledge_dir=Path(env.get("KNOWLEDGE_DIR") or d.knowledge_dir),
            spool_dir=Path(env.get("SPOOL_DIR") or d.spool_dir),
            rate_limit_per_min=_int(env, "RATE_LIMIT_PER_MIN", d.rate_limit_per_min),
            upload_dir=Path(env.get("UPLOAD_DIR") or d.upload_dir),
            human_mode_ttl_s=_float(env, "HUMAN_MODE_TTL_S", d.human_mode_ttl_s),
            complaint_accept_workdays=_int(env, "COMPLAINT_ACCEPT_WORKDAYS", d.complaint_accept_workdays),
            complaint_close_workdays=_int(env, "COMPLAINT_CLOSE_WORKDAYS", d.complaint_close_workdays),
            enquiry_reply_workdays=_int(env, "ENQUIRY_REPLY_WORKDAYS", d.enquiry_reply_workdays),
        )
