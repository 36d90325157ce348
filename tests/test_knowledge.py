"""The knowledge files: the real ones load and say what the seed says; broken
variants (built in tmp_path from the real files) fail with a precise message."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.knowledge import (
    SERVICE_IDS,
    KnowledgeError,
    clear_cache,
    knowledge_for,
    load_knowledge,
    placeholders,
)
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"


@pytest.fixture(scope="module")
def k():
    return load_knowledge(KNOWLEDGE)


@pytest.fixture
def kdir(tmp_path):
    """A copy of the real knowledge directory to break."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    clear_cache()
    yield target
    clear_cache()


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def entry(items, entry_id):
    return next(e for e in items if e["id"] == entry_id)


def problems_of(directory: Path) -> str:
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(directory)
    return str(info.value)


# ---------------------------------------------------------------- real files


def test_real_files_load_with_every_service(k):
    assert set(k.services) == set(SERVICE_IDS)
    assert len(k.eia.categories) >= 28
    for s in k.services.values():
        assert s.source and s.valid_as_of
        assert "不收费" in s.fees
        assert s.materials and all(m.copies >= 1 for m in s.materials)
    for c in k.eia.categories:
        assert c.source and c.valid_as_of


def test_time_limits_are_the_seed_commitments(k):
    limits = {sid: (k.service(sid).legal_limit_days, k.service(sid).promised_limit_days)
              for sid in ("report_book", "report_form", "registration_form")}
    assert limits == {"report_book": (60, 10), "report_form": (30, 5), "registration_form": (15, 2)}


def test_review_meetings_and_green_channel_follow_the_seed(k):
    for s in k.services.values():
        m = s.review_meetings
        assert m.weekdays == (0, 2, 4)
        assert (m.start, m.end) == ("07:50", "08:30")
        assert "随到随批" in s.green_channel.how


def test_consultation_and_acceptance_go_to_the_technical_service_unit(k):
    assert k.service("consultation").where_contact.name == "环保技术服务股"
    assert k.service("acceptance").where_contact.name == "环保技术服务股"
    assert k.eia.contact.name == "环保技术服务股"


def test_registration_form_is_an_online_filing(k):
    s = k.service("registration_form")
    assert "备案" in s.name
    assert any("备案系统" in step for step in s.steps)
    assert any(m.form == "电子" for m in s.materials)


def test_report_book_needs_public_participation_statement(k):
    names = [m.name for m in k.service("report_book").materials]
    assert "公众参与说明" in names
    assert "公众参与说明" not in [m.name for m in k.service("report_form").materials]


def test_placeholders_are_marked_and_12369_is_real(k):
    tech = k.contacts["tech_service"]
    assert tech.phone.value == "0000-0000000" and tech.phone.placeholder is True
    assert tech.office_hours.placeholder is True
    assert "8:30-12:00" in tech.office_hours.value and "14:30-17:30" in tech.office_hours.value
    hotline = k.contacts["hotline_12369"]
    assert hotline.phone.value == "12369" and hotline.phone.placeholder is False
    assert "tech_service.phone" in placeholders(k)
    assert "hotline_12369.phone" not in placeholders(k)


def test_contacts_file_is_the_only_place_for_phones_and_addresses():
    phone = re.compile(r"\b(0\d{2,3}-?\d{7,8}|1\d{10}|12369|0000-0000000)\b")
    for name in ("services.yml", "eia_categories.yml"):
        text = (KNOWLEDGE / name).read_text(encoding="utf-8")
        assert not phone.search(text), name
        data = yaml.safe_load(text)
        keys = set()

        def walk(node):
            if isinstance(node, dict):
                keys.update(node)
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)
        walk(data)
        assert not keys & {"phone", "address", "office_hours"}, name
    assert "placeholder: true" in (KNOWLEDGE / "contacts.yml").read_text(encoding="utf-8")


def test_loaded_once_and_cached(k):
    assert load_knowledge(KNOWLEDGE) is load_knowledge(KNOWLEDGE)
    assert knowledge_for(Settings(knowledge_dir=KNOWLEDGE)) is load_knowledge(KNOWLEDGE)


def test_settings_directory_is_used(kdir):
    edit(kdir / "services.yml", lambda d: entry(d["services"], "report_form").update(promised_limit_days=4))
    assert knowledge_for(Settings(knowledge_dir=kdir)).service("report_form").promised_limit_days == 4
    assert load_knowledge(KNOWLEDGE).service("report_form").promised_limit_days == 5


# ---------------------------------------------------------------- broken variants


def test_a_non_integer_copies_names_file_entry_and_field(kdir):
    edit(kdir / "services.yml",
         lambda d: entry(d["services"], "report_form")["materials"][2].update(copies="两份"))
    msg = problems_of(kdir)
    assert "knowledge/services.yml: entry 'report_form': materials[2].copies: value is not a valid integer" in msg


def test_a_missing_field_is_reported(kdir):
    edit(kdir / "services.yml", lambda d: entry(d["services"], "report_book").pop("legal_limit_days"))
    assert "services.yml: entry 'report_book': legal_limit_days: field required" in problems_of(kdir)


def test_a_misspelt_field_is_reported(kdir):
    def change(d):
        m = entry(d["services"], "acceptance")["materials"][0]
        m["copys"] = m.pop("copies")
    edit(kdir / "services.yml", change)
    msg = problems_of(kdir)
    assert "entry 'acceptance': materials[0].copys: extra fields not permitted" in msg
    assert "entry 'acceptance': materials[0].copies: field required" in msg


def test_a_bad_form_value_is_reported(kdir):
    edit(kdir / "services.yml",
         lambda d: entry(d["services"], "report_form")["materials"][0].update(form="传真"))
    assert "entry 'report_form': materials[0].form: unexpected value" in problems_of(kdir)


def test_every_problem_is_in_one_exception(kdir):
    def change(d):
        entry(d["services"], "report_form")["materials"][1]["copies"] = 0
        entry(d["services"], "report_book")["promised_limit_days"] = 90
    edit(kdir / "services.yml", change)
    with pytest.raises(KnowledgeError) as info:
        load_knowledge(kdir)
    lines = info.value.problems
    assert any("entry 'report_form': materials[1].copies: ensure this value is greater than or equal to 1" in p
               for p in lines)
    assert any("entry 'report_book': promised_limit_days must not exceed legal_limit_days" in p for p in lines)
    assert len(lines) == 2


def test_an_unknown_contact_reference_is_reported(kdir):
    edit(kdir / "services.yml", lambda d: entry(d["services"], "report_form").update(where="window_9"))
    assert ("services.yml: entry 'report_form': where: unknown contact id 'window_9' (not in contacts.yml)"
            in problems_of(kdir))


def test_a_missing_service_is_reported(kdir):
    edit(kdir / "services.yml", lambda d: d.update(services=[s for s in d["services"] if s["id"] != "acceptance"]))
    assert "services.yml: services: missing the entry 'acceptance'" in problems_of(kdir)


def test_a_duplicate_id_is_reported(kdir):
    edit(kdir / "contacts.yml", lambda d: d["contacts"].append(dict(d["contacts"][0])))
    assert "contacts.yml: entry 'tech_service': id: duplicate id 'tech_service'" in problems_of(kdir)


def test_a_refusal_phrase_is_rejected(kdir):
    edit(kdir / "services.yml",
         lambda d: entry(d["services"], "report_form")["steps"].append("材料不齐的不予受理"))
    msg = problems_of(kdir)
    assert "services.yml: entry 'report_form': steps[6]: contains the refusal phrase '不予受理'" in msg


def test_a_placeholder_number_must_be_marked(kdir):
    edit(kdir / "contacts.yml",
         lambda d: entry(d["contacts"], "tech_service")["phone"].update(placeholder=False))
    assert ("contacts.yml: entry 'tech_service': phone: looks like a placeholder number: set placeholder: true"
            in problems_of(kdir))


def test_yaml_syntax_error_names_the_line(kdir):
    path = kdir / "eia_categories.yml"
    path.write_text(path.read_text(encoding="utf-8") + "\n  - id: [broken\n", encoding="utf-8")
    assert re.search(r"eia_categories\.yml: YAML syntax error at line \d+", problems_of(kdir))


def test_a_duplicate_yaml_key_is_rejected(kdir):
    path = kdir / "contacts.yml"
    text = path.read_text(encoding="utf-8").replace("    name: 环保技术服务股\n",
                                                      "    name: 环保技术服务股\n    name: 技术股\n", 1)
    path.write_text(text, encoding="utf-8")
    assert "contacts.yml: YAML syntax error" in problems_of(kdir)
    assert "duplicate key 'name'" in problems_of(kdir)


def test_a_missing_file_is_reported(kdir):
    (kdir / "contacts.yml").unlink()
    msg = problems_of(kdir)
    assert "contacts.yml: file not found" in msg


def test_eia_threshold_with_unknown_measure_is_reported(kdir):
    edit(kdir / "eia_categories.yml",
         lambda d: entry(d["categories"], "pig_farming")["thresholds"][0].update(measure="重量"))
    assert ("eia_categories.yml: entry 'pig_farming': thresholds[0].measure: unknown measure '重量'"
            in problems_of(kdir))


def test_eia_threshold_unit_must_match_its_measure(kdir):
    edit(kdir / "eia_categories.yml",
         lambda d: entry(d["categories"], "hospital")["thresholds"][0].update(unit="吨"))
    assert "entry 'hospital': thresholds[0].unit: '吨' differs from the unit of measure '床位'" in problems_of(kdir)


def test_eia_unknown_unit_is_reported(kdir):
    edit(kdir / "eia_categories.yml",
         lambda d: entry(d["categories"], "hospital")["thresholds"][0].update(unit="斤"))
    assert "entry 'hospital': thresholds[0].unit: unknown unit '斤'" in problems_of(kdir)


def test_eia_keyword_in_two_rows_is_reported(kdir):
    edit(kdir / "eia_categories.yml",
         lambda d: entry(d["categories"], "restaurant")["keywords"].append("养猪场"))
    assert "entry 'restaurant': keywords[" in problems_of(kdir)
    assert "'养猪场' is already a keyword of 'pig_farming'" in problems_of(kdir)


def test_eia_bad_document_is_reported(kdir):
    edit(kdir / "eia_categories.yml",
         lambda d: entry(d["categories"], "car_wash").update(default="report"))
    assert "entry 'car_wash': default: unexpected value" in problems_of(kdir)


def test_eia_threshold_without_bounds_is_reported(kdir):
    def change(d):
        t = entry(d["categories"], "hospital")["thresholds"][0]
        t.pop("min")
    edit(kdir / "eia_categories.yml", change)
    assert "entry 'hospital': thresholds[0]: give min, max or both" in problems_of(kdir)


# ---------------------------------------------------------------- the check script


def run_check(directory: Path):
    env = dict(os.environ, KNOWLEDGE_DIR=str(directory))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_knowledge.py")],
                          capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=120)


def test_check_script_passes_on_the_real_files():
    result = run_check(KNOWLEDGE)
    assert result.returncode == 0, result.stderr
    assert "knowledge check OK" in result.stdout
    assert "tech_service.phone" in result.stdout  # the placeholders to fill in are listed


def test_check_script_fails_on_a_broken_catalogue(kdir):
    edit(kdir / "services.yml",
         lambda d: entry(d["services"], "report_form")["materials"][2].update(copies="abc"))
    result = run_check(kdir)
    assert result.returncode == 1
    assert "entry 'report_form': materials[2].copies: value is not a valid integer" in result.stderr


def test_check_script_fails_when_an_example_disagrees(kdir):
    edit(kdir / "eia_categories.yml",
         lambda d: entry(d["categories"], "restaurant")["examples"][0].update(document="report_book"))
    result = run_check(kdir)
    assert result.returncode == 1
    assert "entry 'restaurant': example '小餐馆'" in result.stderr
