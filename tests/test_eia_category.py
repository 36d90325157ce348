"""EIA category matching against the real knowledge/eia_categories.yml."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from core.consult_text import MAX_BYTES, category_answer, utf8_len
from core.eia_category import classify, cn_number, detect_flags, extract_quantities
from core.knowledge import load_knowledge, refusal_in

ROOT = Path(__file__).resolve().parent.parent
K = load_knowledge(ROOT / "knowledge")


def c(text):
    return classify(text, K)


# ---------------------------------------------------------------- the brief's examples


def test_pig_farm_with_3000_head_in_stock_needs_a_report_book():
    m = c("养猪场存栏3000头")
    assert m.category.id == "pig_farming"
    assert [(q.value, q.unit, q.measure) for q in m.quantities] == [(3000, "头", "存栏")]
    assert m.decided and m.document == "report_book"
    assert any("2500" in r for r in m.rules)


def test_car_repair_shop_gives_the_rule_and_asks_the_area():
    m = c("汽修厂")
    assert m.category.id == "car_repair"
    assert not m.decided and m.document is None
    assert "营业面积" in m.question
    assert c("修车铺营业面积200平方米").document == "registration_form"
    assert c("汽修厂营业面积6000平方米").document == "report_form"
    assert c("修车铺").category.id == "car_repair"


def test_small_restaurant_needs_no_eia_per_the_2021_catalogue():
    m = c("小餐馆")
    assert m.category.id == "restaurant"
    assert m.decided and m.document == "none"
    assert "油烟" in m.category.notes


def test_solar_plant_depends_on_capacity_and_siting():
    m = c("光伏电站")
    assert m.category.id == "solar_pv" and not m.decided
    assert "装机容量" in m.question and ("地面" in m.question or "屋顶" in m.question)
    assert c("地面光伏电站装机20兆瓦").document == "report_form"
    assert c("光伏电站装机5000千瓦").document == "registration_form"
    assert c("光伏电站装机5000千瓦，在自然保护区内").document == "report_form"
    assert c("自家屋顶装光伏").document == "none"


def test_brick_works_modification_asks_what_is_modified():
    m = c("砖厂技改")
    assert m.category.id == "brick_tile"
    assert m.modification and not m.decided
    assert m.document == "report_form"  # for a modification of the main works
    assert "技改" in m.question
    assert any("技改方案" in b for b in m.bring)
    assert c("砖厂").decided and c("砖厂").document == "report_form"


def test_unknown_industry_says_what_to_bring_and_whom_to_ask():
    m = c("我想开个网吧")
    assert m.category is None and not m.decided
    assert m.question and len(m.bring) >= 3
    assert m.contact.name == "环保技术服务股"


# ---------------------------------------------------------------- table examples


EXAMPLES = [(cat.id, ex) for cat in K.eia.categories for ex in cat.examples]


@pytest.mark.parametrize("cat_id,ex", EXAMPLES, ids=[f"{cid}:{ex.text}" for cid, ex in EXAMPLES])
def test_every_example_in_the_table(cat_id, ex):
    m = c(ex.text)
    assert m.category is not None and m.category.id == cat_id
    assert m.document == ex.document
    assert m.decided == ex.expect_decided


def test_the_table_covers_the_common_county_industries():
    phrases = {
        "养猪场": "pig_farming", "牛场": "beef_cattle", "奶牛场": "dairy_cattle", "养鸡场": "poultry_farming",
        "羊场": "sheep_farming", "屠宰场": "slaughterhouse", "汽修厂": "car_repair", "修车铺": "car_repair",
        "餐馆": "restaurant", "光伏": "solar_pv", "风电场": "wind_power", "砖厂": "brick_tile",
        "混凝土搅拌站": "concrete_products", "木材加工厂": "wood_processing", "家具厂": "furniture",
        "印刷厂": "printing", "医院": "hospital", "诊所": "clinic", "学校": "school",
        "房地产开发": "real_estate", "污水处理厂": "sewage_treatment", "采石场": "quarry",
        "电镀厂": "electroplating", "化工厂": "chemical", "食品加工厂": "food_processing",
        "白酒厂": "baijiu", "饲料厂": "feed_mill", "洗车店": "car_wash", "加油站": "gas_station",
        "宾馆": "hotel", "变电站": "power_transmission", "修公路": "highway", "农家乐": "agritainment",
        "有机肥厂": "manure_treatment", "铁矿": "metal_mining",
    }
    assert {p: (c(p).category.id if c(p).category else None) for p in phrases} == phrases


# ---------------------------------------------------------------- decision details


def test_a_bare_head_count_is_asked_as_stock_or_annual_output():
    m = c("养猪场3000头")
    assert not m.decided
    assert {(a.label, a.document) for a in m.alternatives} == {
        ("存栏量", "report_book"), ("年出栏量", "registration_form")}
    assert "存栏" in m.question and "年出栏" in m.question
    # Both readings agree: decided.
    assert c("养猪场6000头").decided and c("养猪场6000头").document == "report_book"
    # A stock of 200 says nothing certain about annual output: ask.
    assert not c("养猪场200头").decided


def test_stock_below_the_threshold_asks_for_annual_output():
    m = c("猪场存栏1000头")
    assert not m.decided and "年出栏" in m.question


def test_sensitive_area_raises_the_document_and_negation_does_not():
    assert c("在水源保护区旁建猪场年出栏1000头").document == "report_book"
    assert c("猪场年出栏1000头，不在水源保护区").document == "registration_form"
    assert c("猪场年出栏1000头，附近没有水源地").document == "registration_form"
    m = c("猪场年出栏1000头")
    assert ("涉及环境敏感区的规模化畜禽养殖", "report_book") in m.caveats


def test_flag_bound_threshold_is_a_caveat_when_the_flag_is_not_said():
    m = c("风电场装机10万千瓦")
    assert m.document == "report_form"
    assert any(d == "report_book" for _, d in m.caveats)
    assert c("风电场装机3万千瓦").caveats == ()


def test_highest_document_wins():
    # Chemical default is a report book; mixing only is a report form.
    assert c("化工产品分装").document == "report_form"
    assert c("化工产品分装，在饮用水源保护区").document == "report_form"  # no sensitive rule for chemicals
    assert c("电镀厂").document == "report_book"


def test_facility_of_a_main_project_follows_the_main_project():
    assert c("养猪场污水处理设施").category.id == "pig_farming"
    assert c("光伏电站配套升压站").category.id == "solar_pv"
    assert c("肉鸡屠宰年屠宰50万只").category.id == "slaughterhouse"


def test_slaughter_thresholds_depend_on_species():
    assert c("生猪屠宰场年屠宰12万头").document == "report_book"
    assert c("肉牛屠宰场年屠宰2万头").document == "report_book"
    assert c("禽类屠宰年屠宰50万只").document == "report_form"


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("text,value,unit", [
    ("装机1.5万千瓦", 15, "兆瓦"),
    ("存栏三千头", 3000, "头"),
    ("存栏两万五千只", 25000, "头"),
    ("占地5亩", 3333.35, "平方米"),
    ("存栏２０００头", 2000, "头"),
    ("年出栏3,000头", 3000, "头"),
    ("35kV线路", 35, "千伏"),
    ("200张床位", 200, "张"),
    ("日处理500吨", 500, "吨"),
    ("全长12公里", 12, "千米"),
    ("6MW", 6, "兆瓦"),
    ("年出栏1万多头", 10000, "头"),
])
def test_quantities_with_units(text, value, unit):
    qs = extract_quantities(text, K.eia)
    assert len(qs) == 1
    assert qs[0].value == pytest.approx(value) and qs[0].unit == unit


def test_money_and_other_units_are_not_quantities():
    assert extract_quantities("投资500万元，建一个厂", K.eia) == []


def test_qualifier_words_pick_the_measure():
    (q,) = extract_quantities("常年存栏3000头", K.eia)
    assert q.measure == "存栏"
    (q,) = extract_quantities("5000头出栏", K.eia)
    assert q.measure == "年出栏"


def test_chinese_numerals():
    assert cn_number("三千五") == 3500
    assert cn_number("两万五") == 25000
    assert cn_number("一百二十") == 120
    assert cn_number("十万") == 100000
    assert cn_number("一千万") == 10000000
    assert cn_number("abc") is None


def test_flags_respect_negation():
    assert "sensitive_area" in detect_flags("选址在自然保护区", K.eia)
    assert "sensitive_area" not in detect_flags("选址不涉及自然保护区", K.eia)
    assert "sensitive_area" not in detect_flags("远离水源地", K.eia)


# ---------------------------------------------------------------- robustness


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("养猪场存栏出栏头只万千百三两5012.汽修光伏电站技改不在水源保护区，。 kVMW亩平方米张床位吨")),
               max_size=40))
def test_any_text_gets_a_bounded_answer_without_refusal(text):
    m = c(text)
    parts = category_answer(m)
    assert parts
    for part in parts:
        assert utf8_len(part) <= MAX_BYTES
        assert refusal_in(part) is None
    if not m.decided:
        assert m.question
