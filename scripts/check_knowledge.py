"""Validate knowledge/ and print a summary; exit 1 on any problem.

    python scripts/check_knowledge.py            # KNOWLEDGE_DIR or ./knowledge
    python -m scripts.check_knowledge --dir PATH

Checks, beyond the schema (core.knowledge): every `examples` row of
eia_categories.yml classifies as it says; every answer the bot can build from
the files fits WeChat's 2048 bytes per part and contains no refusal phrase.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core import consult_text  # noqa: E402
from core.eia_category import classify  # noqa: E402
from core.knowledge import Knowledge, KnowledgeError, load_knowledge, placeholders, refusal_in  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.workdays import CHINA_TZ  # noqa: E402


def check_examples(k: Knowledge) -> Tuple[int, List[str]]:
    count, problems = 0, []
    for cat in k.eia.categories:
        for ex in cat.examples:
            count += 1
            m = classify(ex.text, k)
            got = (m.category.id if m.category else None, m.document, m.decided)
            want = (cat.id, ex.document, ex.expect_decided)
            if got != want:
                problems.append(f"eia_categories.yml: entry '{cat.id}': example '{ex.text}': "
                                f"expected (row, document, decided)={want}, got {got}")
    return count, problems


def check_answers(k: Knowledge) -> Tuple[int, List[str]]:
    """Build every answer; each part must fit and avoid refusal phrases."""
    now = dt.datetime(2026, 11, 24, 20, 0, tzinfo=CHINA_TZ)
    builders = []
    for sid, service in k.services.items():
        builders.append((f"materials_answer({sid})", lambda s=service: consult_text.materials_answer(s, k.contacts)))
        builders.append((f"time_limit_answer({sid})", lambda s=service: consult_text.time_limit_answer(s, now.date())))
        builders.append((f"process_answer({sid})", lambda s=service: consult_text.process_answer(s, now)))
    texts = [ex.text for c in k.eia.categories for ex in c.examples] + ["网吧", "养殖"]
    texts += [kw for c in k.eia.categories for kw in c.keywords[:1]]
    for text in texts:
        builders.append((f"category_answer('{text}')", lambda t=text: consult_text.category_answer(classify(t, k))))
    builders.append(("approval_choice_prompt()", lambda: [consult_text.approval_choice_prompt()]))
    problems = []
    answers: List[Tuple[str, List[str]]] = []
    for name, build in builders:
        try:
            answers.append((name, build()))
        except ValueError as exc:  # a single block too long for one message
            problems.append(f"{name}: {exc}")
    for name, parts in answers:
        for i, part in enumerate(parts, 1):
            size = consult_text.utf8_len(part)
            if size > consult_text.MAX_BYTES:
                problems.append(f"{name}: part {i} is {size} bytes (limit {consult_text.MAX_BYTES})")
            phrase = refusal_in(part)
            if phrase:
                problems.append(f"{name}: part {i} contains the refusal phrase '{phrase}'")
    return len(builders), problems


def summary(k: Knowledge) -> List[str]:
    lines = [f"knowledge: {k.directory}"]
    for s in k.services.values():
        legal = f"{s.legal_limit_days}日" if s.legal_limit_days else "-"
        promised = f"{s.promised_limit_days}个工作日" if s.promised_limit_days else "-"
        lines.append(f"  service {s.id:<18} {s.name}: {len(s.materials)} materials, "
                     f"legal {legal}, promised {promised}, valid_as_of {s.valid_as_of}")
    todo = placeholders(k)
    lines.append(f"  contacts: {len(k.contacts)}; placeholders still to fill in: "
                 + (", ".join(todo) if todo else "none"))
    cats = k.eia.categories
    unconfirmed = [c.id for c in cats if c.needs_confirmation]
    lines.append(f"  EIA table: {len(cats)} industries, {sum(len(c.keywords) for c in cats)} keywords; "
                 f"{len(unconfirmed)} rows marked needs_confirmation (check against the 名录 text): "
                 + ", ".join(unconfirmed))
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="knowledge directory")
    args = parser.parse_args(argv)
    directory = args.dir or Settings.from_env().knowledge_dir
    try:
        k = load_knowledge(directory)
    except KnowledgeError as exc:
        print(f"knowledge check FAILED ({len(exc.problems)} problems):", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("\n".join(summary(k)))
    n_examples, problems = check_examples(k)
    n_answers, answer_problems = check_answers(k)
    problems += answer_problems
    print(f"  examples: {n_examples} checked; answers: {n_answers} built")
    if problems:
        print(f"knowledge check FAILED ({len(problems)} problems):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print("knowledge check OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
