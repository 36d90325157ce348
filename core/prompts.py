"""The fixed sentences of knowledge/prompts.yml, loaded once."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from core.settings import Settings


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, str]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    prompts = data.get("prompts")
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ValueError(f"{path}: 'prompts' must map names to texts")
    return prompts


def prompt(name: str, settings: Settings | None = None, **values: object) -> str:
    settings = settings or Settings.from_env()
    text = _load(str(settings.knowledge_dir / "prompts.yml"))[name]
    return text.format(**values) if values else text


def all_prompts(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or Settings.from_env()
    return dict(_load(str(settings.knowledge_dir / "prompts.yml")))
