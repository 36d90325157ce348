"""The Rasa project itself: data validation and story tests on the trained model."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts import model as model_mod

ROOT = Path(__file__).resolve().parent.parent
RASA = str(Path(sys.executable).parent / "rasa")


def run(cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_data_validates_without_warnings():
    r = run([RASA, "data", "validate", "--data", "nlu_data", "--domain", "domain.yml",
             "--config", "config.yml", "--fail-on-warnings", "--max-history", "5"])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]


def _norm(text: str) -> str:
    """Compare sentences without case, width, spaces or punctuation."""
    import re
    import unicodedata

    return re.sub(r"[\s\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def test_held_out_split_is_not_in_training_data():
    from rasa.shared.nlu.training_data.loading import load_data

    train = {_norm(e.get("text")) for e in load_data(str(ROOT / "nlu_data" / "nlu")).training_examples}
    test = [e.get("text") for e in load_data(str(ROOT / "tests" / "nlu_test.yml")).training_examples]
    leaked = [t for t in test if _norm(t) in train]
    assert len(test) >= 300
    assert not leaked, f"{len(leaked)} test sentences are in the training data: {leaked[:5]}"


@pytest.fixture(scope="module")
def trained_model() -> Path:
    return model_mod.ensure_model(log=lambda m: None)


def test_stories(trained_model, tmp_path):
    out = tmp_path / "results"
    r = run([RASA, "test", "core", "--model", str(trained_model), "--stories", "tests/test_stories.yml",
             "--out", str(out), "--fail-on-prediction-errors", "--no-plot"])
    failed = (out / "failed_test_stories.yml")
    detail = failed.read_text() if failed.exists() else ""
    assert r.returncode == 0, (r.stdout[-3000:] + r.stderr[-3000:] + detail[-6000:])
    # rasa prints e.g. "Correct:          14 / 14" for conversations: make sure
    # stories were actually evaluated, and all of them correctly.
    import re

    found = re.findall(r"Correct:\s+(\d+) / (\d+)", r.stdout + r.stderr)
    assert found, "rasa test core evaluated nothing"
    correct, total = map(int, found[0])
    assert total >= 10 and correct == total, found
