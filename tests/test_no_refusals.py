""""只说如何办，不说不能办": no text the bot can send contains a refusal.

Scanned: every domain response, every text under knowledge/ (catalogue,
categories, contacts, prompts, menu), and every string literal in the action
server and the gateway (what actions and the gateway say to users).
"""
from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
from core.knowledge import REFUSAL_PHRASES as REFUSALS  # the one list of forbidden phrases


# The bureau's own principle quotes the word it forbids; that quote is no refusal.
PRINCIPLE = "不说不能办"
# Provenance fields are for the bureau's editors, never sent to users.
NOT_SENT = ("source",)


def _strings(node) -> list[str]:
    if isinstance(node, str):
        return [node.replace(PRINCIPLE, "")]
    if isinstance(node, dict):
        return [s for k, v in node.items() if k not in NOT_SENT for s in _strings(k) + _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def _yaml_texts() -> dict[str, list[str]]:
    files = [ROOT / "domain.yml"] + sorted((ROOT / "knowledge").rglob("*.yml"))
    return {str(f.relative_to(ROOT)): _strings(yaml.safe_load(f.read_text(encoding="utf-8"))) for f in files}


def _python_texts() -> dict[str, list[str]]:
    out = {}
    for folder in ("actions", "bot", "core"):
        for f in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(f.read_text(encoding="utf-8"))
            docstrings = {
                id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)
            }
            out[str(f.relative_to(ROOT))] = [
                n.value.replace(PRINCIPLE, "") for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                and n.value not in REFUSALS  # the list itself
            ]
    return out


def find_refusals(texts: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    return [(where, word, s) for where, strings in texts.items() for s in strings for word in REFUSALS if word in s]


def test_the_scanner_finds_a_refusal():
    assert find_refusals({"x": ["这个我们不予受理。"]}) == [("x", "不予受理", "这个我们不予受理。")]
    assert find_refusals({"x": ["请到窗口办理。"]}) == []


def test_every_text_the_bot_can_send_is_free_of_refusals():
    texts = {**_yaml_texts(), **_python_texts()}
    assert sum(len(v) for v in texts.values()) > 200  # the scan really read the texts
    assert "domain.yml" in texts and any(k.startswith("knowledge/services") for k in texts)
    found = [(w, word, s) for w, word, s in find_refusals(texts) if w != "tests/test_no_refusals.py"]
    assert not found, found


def test_every_fallback_names_a_way_forward():
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    prompts = yaml.safe_load((ROOT / "knowledge" / "prompts.yml").read_text(encoding="utf-8"))["prompts"]
    fallback_texts = [prompts["please_rephrase"]] + [r["text"] for r in domain["responses"]["utter_out_of_scope"]]
    for text in fallback_texts:
        assert any(way in text for way in ("转人工", "12345", "12369", "电话", "比如")), text
