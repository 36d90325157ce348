"""NLU figures on the held-out split (tests/nlu_test.yml), never trained on.

    python -m scripts.eval_nlu            # `make eval`: rasa test nlu + figures + PNG
    python -m scripts.eval_nlu --quick    # figures only (what the test suite's floor uses)

Prints intent accuracy and macro F1, `pollution_type` accuracy on the
complaint sentences (a sentence without an annotation counts as `other`), the
per-intent figures, and writes the confusion matrix to docs/eval/.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_SPLIT = ROOT / "tests" / "nlu_test.yml"
OUT = ROOT / "docs" / "eval"


def load_split(path: Path = TEST_SPLIT) -> list[dict]:
    from rasa.shared.nlu.training_data.loading import load_data

    rows = []
    for ex in load_data(str(path)).training_examples:
        ents = ex.get("entities") or []
        ptype = next((e["value"] for e in ents if e.get("entity") == "pollution_type"), None)
        approval = next((e["value"] for e in ents if e.get("entity") == "approval_type"), None)
        rows.append({"text": ex.get("text"), "intent": ex.get("intent"),
                     "pollution_type": ptype, "approval_type": approval})
    return rows


async def _predict(model_path: Path, texts: list[str]) -> list[dict]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model_path))
    return [await agent.parse_message(t) for t in texts]


def evaluate(model_path: Path) -> dict:
    from sklearn.metrics import f1_score

    rows = load_split()
    preds = asyncio.run(_predict(model_path, [r["text"] for r in rows]))
    y_true = [r["intent"] for r in rows]
    # nlu_fallback (low confidence) counts as wrong: the user got no answer to it.
    y_pred = [p["intent"]["name"] for p in preds]
    intent_acc = sum(a == b for a, b in zip(y_true, y_pred)) / len(rows)
    macro_f1 = f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)

    def ent(p, name):
        return next((e["value"] for e in p.get("entities", []) if e.get("entity") == name), None)

    complaint = [(r, p) for r, p in zip(rows, preds) if r["intent"] == "report_pollution"]
    ptype_ok = sum((r["pollution_type"] or "other") == (ent(p, "pollution_type") or "missing") for r, p in complaint)
    approval = [(r, p) for r, p in zip(rows, preds) if r["approval_type"]]
    approval_ok = sum(r["approval_type"] == ent(p, "approval_type") for r, p in approval)
    per_intent = {}
    for intent in sorted(set(y_true)):
        idx = [i for i, t in enumerate(y_true) if t == intent]
        per_intent[intent] = {"n": len(idx), "accuracy": round(sum(y_pred[i] == intent for i in idx) / len(idx), 3)}
    errors = [{"text": r["text"], "expected": r["intent"], "predicted": p["intent"]["name"]}
              for r, p in zip(rows, preds) if r["intent"] != p["intent"]["name"]]
    return {
        "n_sentences": len(rows),
        "intent_accuracy": round(intent_acc, 4),
        "intent_macro_f1": round(float(macro_f1), 4),
        "pollution_type_n": len(complaint),
        "pollution_type_accuracy": round(ptype_ok / max(1, len(complaint)), 4),
        "approval_type_n": len(approval),
        "approval_type_accuracy": round(approval_ok / max(1, len(approval)), 4),
        "per_intent": per_intent,
        "errors": errors,
        "_y": (y_true, y_pred),
    }


def plot_confusion(y_true: list[str], y_pred: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(y_true) | set(y_pred))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    fig, ax = plt.subplots(figsize=(10, 9))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=70, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(j, i, cm[i, j], ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Intent confusion matrix, held-out split")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str]) -> int:
    from scripts.model import ensure_model

    model = ensure_model(log=lambda m: print(m, file=sys.stderr))
    if "--quick" not in argv:
        # Rasa's own evaluation, reports under results/eval/ (not committed).
        subprocess.run([str(Path(sys.executable).parent / "rasa"), "test", "nlu", "--nlu", str(TEST_SPLIT),
                        "--model", str(model), "--out", str(ROOT / "results" / "eval")], cwd=ROOT, check=True)
    res = evaluate(model)
    y_true, y_pred = res.pop("_y")
    plot_confusion(y_true, y_pred, OUT / "intent_confusion_matrix.png")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(res, ensure_ascii=False, indent=2))
    print(f"held-out sentences:        {res['n_sentences']}")
    print(f"intent accuracy:           {res['intent_accuracy']:.3f}")
    print(f"intent macro F1:           {res['intent_macro_f1']:.3f}")
    print(f"pollution_type accuracy:   {res['pollution_type_accuracy']:.3f}  (n={res['pollution_type_n']})")
    print(f"approval_type accuracy:    {res['approval_type_accuracy']:.3f}  (n={res['approval_type_n']})")
    for intent, v in res["per_intent"].items():
        print(f"  {intent:18s} n={v['n']:3d}  acc={v['accuracy']:.3f}")
    print(f"errors ({len(res['errors'])}):")
    for e in res["errors"]:
        print(f"  {e['expected']:>17s} -> {e['predicted']:<17s} {e['text']}")
    print(f"confusion matrix: {OUT / 'intent_confusion_matrix.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
