"""Train the Rasa model only when its inputs changed.

The model is named by a fingerprint of everything that shapes it: config.yml,
domain.yml, every file under nlu_data/ (the jieba dictionary included) and the
installed Rasa version. A trained model is kept in `models/` and in a
machine-wide cache (`$ECOBOT_MODEL_CACHE`, default ~/.cache/county-eco-bot/models)
so a fresh clone on the same machine does not retrain.

Rasa restores the JiebaTokenizer from its own training cache even when only
the dictionary changed (RASA-NOTES.md), so training runs with `--force` when
the dictionary's hash differs from the one the last model was trained with.

    python -m scripts.model path      # print the model path, training if needed
    python -m scripts.model fingerprint
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ["config.yml", "domain.yml"]
DATA_DIR = "nlu_data"
DICT_DIR = "nlu_data/jieba_dict"


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def _files_under(rel: str) -> list[Path]:
    base = ROOT / rel
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))


def dictionary_hash() -> str:
    return _hash_files(_files_under(DICT_DIR))


def fingerprint() -> str:
    import rasa  # the version shapes the model too

    h = hashlib.sha256()
    h.update(rasa.__version__.encode())
    h.update(_hash_files([ROOT / p for p in INPUTS] + _files_under(DATA_DIR)).encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "county-eco-bot" / "models"
    return Path(os.environ.get("ECOBOT_MODEL_CACHE") or default)


def model_path(fp: str | None = None) -> Path:
    return ROOT / "models" / f"model-{fp or fingerprint()}.tar.gz"


def ensure_model(log=print) -> Path:
    fp = fingerprint()
    target = model_path(fp)
    if target.exists():
        return target
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / target.name
    # One training at a time on this machine: parallel trainings on 2 cores
    # only slow each other down.
    with open(cache / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not cached.exists():
            _train(fp, cache, log)
        shutil.copyfile(cached, target)
    return target


def _train(fp: str, cache: Path, log) -> None:
    dict_hash = dictionary_hash()
    marker = ROOT / ".rasa" / "jieba_dict.sha256"
    force = not marker.exists() or marker.read_text().strip() != dict_hash
    out = ROOT / "models" / ".training"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(Path(sys.executable).parent / "rasa"), "train",
        "--config", "config.yml", "--domain", "domain.yml", "--data", DATA_DIR,
        "--out", str(out), "--fixed-model-name", f"model-{fp}",
    ]
    if force:
        cmd.append("--force")
    log(f"training model {fp} (force={force}) ...")
    started = time.monotonic()
    subprocess.run(cmd, cwd=ROOT, check=True)
    log(f"trained model {fp} in {time.monotonic() - started:.0f} s")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(dict_hash)
    tmp = cache / f".model-{fp}.tar.gz.part"
    shutil.copyfile(out / f"model-{fp}.tar.gz", tmp)
    os.replace(tmp, cache / f"model-{fp}.tar.gz")
    shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "path"
    if cmd == "fingerprint":
        print(fingerprint())
    elif cmd == "path":
        print(ensure_model(log=lambda m: print(m, file=sys.stderr)))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
