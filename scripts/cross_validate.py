"""5-fold cross-validation of the NLU pipeline on the training data (`make cv`).

    python -m scripts.cross_validate              # 5 folds, ~50 min on 2 cores
    python -m scripts.cross_validate --folds 3

Runs `rasa test nlu --cross-validation` with config.yml on nlu_data/nlu
(each fold trains on 4/5 of the examples and is tested on the other 1/5),
keeps Rasa's reports under results/cv/ (not committed; the intent report,
errors and confusion matrix are copied to docs/eval/cv/) and writes the summary — intent
accuracy, macro F1 and precision as mean (standard deviation) over the folds,
train and test, each entity extractor's figures and the per-intent F1 of the
pooled test predictions — to docs/eval/cross_validation.json. This is a
second view beside the held-out split (`make eval`): it says how stable the
pipeline is over different cuts of the data, not how it does on sentences
written by someone else.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "eval"

KEPT_REPORTS = ("intent_report.json", "intent_errors.json", "intent_confusion_matrix.png")

# "rasa.nlu.test  - test Accuracy: 0.956 (0.004)"
FIGURE = re.compile(r"\b(train|test) (Accuracy|F1-score|Precision): ([0-9.]+) \(([0-9.]+)\)")
SECTION = re.compile(r"(Intent|Entity) evaluation results")
EXTRACTOR = re.compile(r"Entity extractor: (\S+)")


def parse_log(text: str) -> dict:
    """Rasa's CV summary lines -> {"intent": {"test": {"accuracy": (mean, std)...}}, "entities": {extractor: ...}}."""
    out: dict = {"intent": {}, "entities": {}}
    target = None
    for line in text.splitlines():
        if m := SECTION.search(line):
            target = out["intent"] if m.group(1) == "Intent" else None
            continue
        if m := EXTRACTOR.search(line):
            target = out["entities"].setdefault(m.group(1), {})
            continue
        if (m := FIGURE.search(line)) and target is not None:
            split, name, mean, std = m.groups()
            target.setdefault(split, {})[name.lower().replace("-score", "")] = {
                "mean": float(mean), "std": float(std)}
    return out


def per_intent_f1(report: Path) -> dict:
    data = json.loads(report.read_text())
    return {k: {"f1": round(v["f1-score"], 3), "support": v["support"]}
            for k, v in sorted(data.items()) if isinstance(v, dict) and "f1-score" in v
            and k not in ("macro avg", "weighted avg", "micro avg")}


def count_examples() -> int:
    from rasa.shared.nlu.training_data.loading import load_data

    return len(load_data(str(ROOT / "nlu_data" / "nlu")).intent_examples)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args(argv)
    reports = ROOT / "results" / "cv"
    reports.mkdir(parents=True, exist_ok=True)
    rasa = Path(sys.executable).parent / "rasa"
    cmd = [str(rasa), "test", "nlu", "--nlu", "nlu_data/nlu", "--config", "config.yml",
           "--cross-validation", "--folds", str(args.folds), "--out", str(reports.relative_to(ROOT))]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    started = time.monotonic()
    lines = []
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            sys.stderr.write(line)
            lines.append(line)
    elapsed = time.monotonic() - started
    if p.returncode != 0:
        print(f"rasa test nlu failed (exit {p.returncode})", file=sys.stderr)
        return p.returncode
    figures = parse_log("".join(lines))
    if not figures["intent"].get("test"):
        print("no cross-validation figures found in Rasa's output", file=sys.stderr)
        return 1
    summary = {
        "folds": args.folds,
        "examples": count_examples(),
        "seconds": round(elapsed),
        "intent": figures["intent"],
        "entities": figures["entities"],
        "per_intent_test_f1": per_intent_f1(reports / "intent_report.json")
        if (reports / "intent_report.json").exists() else {},
    }
    kept = OUT / "cv"
    kept.mkdir(parents=True, exist_ok=True)
    for name in KEPT_REPORTS:
        if (reports / name).exists():
            shutil.copy2(reports / name, kept / name)
    (OUT / "cross_validation.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    t = figures["intent"]["test"]
    print(f"{args.folds}-fold cross-validation, {elapsed / 60:.0f} min")
    print("intent test  " + ", ".join(f"{k} {v['mean']:.3f} ({v['std']:.3f})" for k, v in t.items()))
    for name, fig in figures["entities"].items():
        if fig.get("test"):
            print(f"entities {name}: " + ", ".join(f"{k} {v['mean']:.3f} ({v['std']:.3f})" for k, v in fig["test"].items()))
    print(f"written {OUT / 'cross_validation.json'}, {kept}/ (intent reports); all of Rasa's under {reports}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
