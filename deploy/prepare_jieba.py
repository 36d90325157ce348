"""Prepare jieba's dictionary cache at image build time.

jieba builds its prefix dictionary on the first cut of every process (over a
second) unless `jieba.cache` exists in the temp directory; it writes that file
there itself. The Dockerfile runs this script as the runtime user with
TMPDIR pointing at a directory that user can write, so every container starts
with the cache in place, and checks that the project's dictionary
(config.yml's JiebaTokenizer `dictionary_path`) loads and cuts domain words
whole, the way Rasa's JiebaTokenizer loads it (jieba.load_userdict per file).

    python deploy/prepare_jieba.py     # prints the cache file; exit 1 on failure
"""
from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROBE = "我想问一下环评报告表要交什么材料"
EXPECTED_TOKEN = "环评报告表"


def dictionary_dir(config_path: Path = ROOT / "config.yml") -> Path:
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    for component in config.get("pipeline", []):
        if component.get("name") == "JiebaTokenizer" and component.get("dictionary_path"):
            return ROOT / component["dictionary_path"]
    raise SystemExit("config.yml has no JiebaTokenizer with a dictionary_path")


def main() -> int:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    cache = Path(tempfile.gettempdir()) / "jieba.cache"
    jieba.initialize()  # builds the prefix dictionary and writes jieba.cache
    files = sorted(p for p in dictionary_dir().iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        print(f"no dictionary files in {dictionary_dir()}", file=sys.stderr)
        return 1
    for f in files:
        jieba.load_userdict(str(f))
    tokens = jieba.lcut(PROBE)
    if not cache.is_file() or cache.stat().st_size == 0:
        print(f"jieba did not write its cache to {cache} (is the temp dir writable?)", file=sys.stderr)
        return 1
    if EXPECTED_TOKEN not in tokens:
        print(f"the project dictionary did not load: {tokens}", file=sys.stderr)
        return 1
    print(f"{cache} ({cache.stat().st_size} bytes); {len(files)} dictionary file(s); {' / '.join(tokens)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
