"""Load and validate the bureau's knowledge files (`knowledge/*.yml`).

Three files, edited by bureau staff, validated here with pydantic (v1 API):

- `services.yml`   one entry per procedure (materials, limits, steps, ...)
- `contacts.yml`   THE one place for phone numbers, addresses, office hours
- `eia_categories.yml`  the EIA category table (which document a project needs)

`load_knowledge(directory)` reads all three once and caches the result per
directory. Anything wrong raises ONE `KnowledgeError` whose message lists every
problem, one per line, each naming the file, the entry id and the field, e.g.

    knowledge/services.yml: entry 'report_form': materials[2].copies: value is not a valid integer

Cross-file rules checked here: every `contact` / `where` / `fallback` id
exists in contacts.yml; the five service ids exist; EIA thresholds name a
declared measure with the same unit; flags referenced by rows are declared;
no keyword belongs to two rows; no text contains a refusal phrase
(`REFUSAL_PHRASES`), because the bureau's rule is "只说如何办，不说不能办".
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterable, List, Literal, Optional, Tuple

import yaml
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    conint,
    constr,
    root_validator,
    validator,
)

from core.settings import PROJECT_ROOT, Settings

SERVICES_FILE = "services.yml"
CONTACTS_FILE = "contacts.yml"
EIA_FILE = "eia_categories.yml"

# Approval / procedure ids (the `approval_type` entity values, plus consultation).
SERVICE_IDS = ("report_book", "report_form", "registration_form", "acceptance", "consultation")

# EIA documents, lowest to highest. "none" = 不纳入环评管理.
DOCUMENTS = ("none", "registration_form", "report_form", "report_book")
DOCUMENT_LEVEL = {doc: level for level, doc in enumerate(DOCUMENTS)}
DOCUMENT_NAMES = {
    "report_book": "环境影响报告书",
    "report_form": "环境影响报告表",
    "registration_form": "环境影响登记表（网上备案）",
    "none": "不需要办理环评手续",
}

# Base units of EIA thresholds; YAML may also use these aliases (same quantity).
UNITS = ("头", "平方米", "兆瓦", "千伏", "张", "吨", "千米", "立方米", "千升")
UNIT_ALIASES = {"只": "头", "羽": "头", "公里": "千米", "平米": "平方米"}

WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

# Phrases the bot must never say (the bureau's "只说如何办，不说不能办").
# The one list: tests/test_no_refusals.py scans every text the bot can send with it.
REFUSAL_PHRASES = ("不能办", "无法办理", "办不了", "不予受理", "不能受理", "无法处理", "不能处理", "办理不了",
                   "无法受理", "不受理", "不办理", "没法办", "不给办")
# Quoting the motto itself is not a refusal.
_MOTTO = "不说不能办"


def refusal_in(text: str) -> Optional[str]:
    """The first refusal phrase in `text` (quotes of the motto excepted), or None."""
    text = text.replace(_MOTTO, "")
    for phrase in REFUSAL_PHRASES:
        if phrase in text:
            return phrase
    return None

Ident = constr(strict=True, regex=r"^[a-z][a-z0-9_]*$")
Text = constr(strict=True, strip_whitespace=True, min_length=1, max_length=200)
LongText = constr(strict=True, strip_whitespace=True, min_length=1, max_length=400)
OptText = constr(strict=True, strip_whitespace=True, max_length=200)
ShortText = constr(strict=True, strip_whitespace=True, min_length=1, max_length=40)
Count = conint(strict=True, ge=1, le=50)
Days = conint(strict=True, ge=1, le=366)
Document = Literal["report_book", "report_form", "registration_form", "none"]


class KnowledgeError(ValueError):
    """The knowledge files are malformed; the message lists every problem."""

    def __init__(self, problems: List[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _Model(BaseModel):
    class Config:
        extra = "forbid"
        allow_mutation = False


# ---------------------------------------------------------------- contacts


class ContactValue(_Model):
    value: Text
    placeholder: StrictBool


class Contact(_Model):
    id: Ident
    name: ShortText
    unit: Text
    duty: Text
    phone: ContactValue
    address: ContactValue
    office_hours: ContactValue
    fallback: Optional[Ident] = None
    source: LongText
    valid_as_of: dt.date
    _fallback_contact: Optional["Contact"] = PrivateAttr(None)

    @validator("phone")
    def _phone_shape(cls, v: ContactValue) -> ContactValue:
        if not re.fullmatch(r"[0-9][0-9\-]{2,19}", v.value):
            raise ValueError("value must be digits and '-' only, e.g. \"0000-0000000\" or \"12369\"")
        if not v.placeholder and set(v.value) <= {"0", "-"}:
            raise ValueError("looks like a placeholder number: set placeholder: true")
        return v

    @property
    def fallback_contact(self) -> Optional["Contact"]:
        return self._fallback_contact


Contact.update_forward_refs()


class ContactsFile(_Model):
    valid_as_of: dt.date
    contacts: List[dict]


# ---------------------------------------------------------------- services


class Material(_Model):
    name: ShortText
    original_or_copy: Literal["原件", "复印件"]
    copies: Count
    form: Literal["纸质", "电子", "纸质+电子"]
    required_when: Text
    notes: OptText = ""


class ReviewMeetings(_Model):
    days: List[Literal[WEEKDAY_NAMES]] = Field(..., min_items=1)  # type: ignore[valid-type]
    start: constr(strict=True, regex=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: constr(strict=True, regex=r"^([01]\d|2[0-3]):[0-5]\d$")
    purpose: Text
    source: LongText

    @root_validator(skip_on_failure=True)
    def _start_before_end(cls, values: dict) -> dict:
        if values["start"] >= values["end"]:
            raise ValueError("start must be before end")
        return values

    @property
    def weekdays(self) -> Tuple[int, ...]:
        return tuple(sorted(WEEKDAY_NAMES.index(d) for d in self.days))

    @property
    def start_time(self) -> dt.time:
        return dt.time.fromisoformat(self.start)

    @property
    def end_time(self) -> dt.time:
        return dt.time.fromisoformat(self.end)


class GreenChannel(_Model):
    who: Text
    how: Text
    source: LongText


class Service(_Model):
    id: Ident
    name: ShortText
    short_name: ShortText
    summary: Text
    materials: List[Material] = Field(..., min_items=1)
    legal_limit_days: Optional[Days] = Field(...)
    legal_limit_text: Text
    legal_limit_basis: Text
    promised_limit_days: Optional[Days] = Field(...)
    promised_limit_text: Text
    steps: List[Text] = Field(..., min_items=1)
    next_step: Text
    where: Ident
    contact: Ident
    review_meetings: ReviewMeetings
    green_channel: GreenChannel
    fees: Text
    legal_basis: List[Text] = Field(..., min_items=1)
    source: LongText
    valid_as_of: dt.date
    _where_contact: Optional[Contact] = PrivateAttr(None)
    _contact_contact: Optional[Contact] = PrivateAttr(None)

    @validator("materials")
    def _unique_material_names(cls, v: List[Material]) -> List[Material]:
        seen = set()
        for i, m in enumerate(v):
            if m.name in seen:
                raise ValueError(f"materials[{i}] duplicates the name '{m.name}'")
            seen.add(m.name)
        return v

    @root_validator(skip_on_failure=True)
    def _promise_within_law(cls, values: dict) -> dict:
        legal, promised = values.get("legal_limit_days"), values.get("promised_limit_days")
        if legal is not None and promised is not None and promised > legal:
            raise ValueError("promised_limit_days must not exceed legal_limit_days")
        return values

    @property
    def where_contact(self) -> Contact:
        """The window where the service is handled (resolved at load time)."""
        assert self._where_contact is not None, "service not loaded through load_knowledge()"
        return self._where_contact

    @property
    def contact_entry(self) -> Contact:
        """Who answers questions about the service (resolved at load time)."""
        assert self._contact_contact is not None, "service not loaded through load_knowledge()"
        return self._contact_contact


class ServicesFile(_Model):
    valid_as_of: dt.date
    services: List[dict]


# ---------------------------------------------------------------- EIA table


def _normalise_unit(v: str) -> str:
    v = UNIT_ALIASES.get(v, v)
    if v not in UNITS:
        raise ValueError(f"unknown unit '{v}'; use one of {', '.join(UNITS + tuple(UNIT_ALIASES))}")
    return v


class Measure(_Model):
    label: ShortText
    unit: str
    words: List[ShortText] = Field(..., min_items=1)

    _unit = validator("unit", allow_reuse=True)(_normalise_unit)


class Flag(_Model):
    label: ShortText
    words: List[ShortText] = Field(..., min_items=1)


class Threshold(_Model):
    measure: ShortText
    unit: str
    min: Optional[float] = None
    max: Optional[float] = None
    min_inclusive: StrictBool = True
    max_inclusive: StrictBool = False
    with_flag: Optional[Ident] = None
    without_flags: List[Ident] = []
    document: Document
    rule: Text

    _unit = validator("unit", allow_reuse=True)(_normalise_unit)

    @root_validator(skip_on_failure=True)
    def _bounds(cls, values: dict) -> dict:
        lo, hi = values.get("min"), values.get("max")
        if lo is None and hi is None:
            raise ValueError("give min, max or both")
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError("min must be below max")
        return values

    def contains(self, value: float) -> bool:
        if self.min is not None and (value < self.min or (value == self.min and not self.min_inclusive)):
            return False
        if self.max is not None and (value > self.max or (value == self.max and not self.max_inclusive)):
            return False
        return True

    def applies(self, flags: Iterable[str]) -> bool:
        flags = set(flags)
        if self.with_flag and self.with_flag not in flags:
            return False
        return not (set(self.without_flags) & flags)


class Condition(_Model):
    flag: Ident
    document: Document
    rule: Text


class Example(_Model):
    text: Text
    document: Optional[Document] = Field(...)
    decided: Optional[StrictBool] = None

    @property
    def expect_decided(self) -> bool:
        return self.decided if self.decided is not None else self.document is not None


class EiaCategory(_Model):
    id: Ident
    name: ShortText
    keywords: List[ShortText] = Field(..., min_items=1)
    priority: conint(strict=True, ge=-9, le=9) = 0
    catalogue_ref: Text
    thresholds: List[Threshold] = []
    conditions: List[Condition] = []
    default: Optional[Document] = Field(...)
    question: Text
    bring: List[Text] = []
    notes: constr(strict=True, strip_whitespace=True, max_length=300) = ""
    needs_confirmation: StrictBool
    examples: List[Example] = []
    source: LongText
    valid_as_of: dt.date


class UnknownGuidance(_Model):
    question: Text
    bring: List[Text] = Field(..., min_items=1)


class EiaFile(_Model):
    valid_as_of: dt.date
    catalogue: Text
    contact: Ident
    measures: Dict[str, Measure]
    flags: Dict[Ident, Flag]
    unknown: UnknownGuidance
    categories: List[dict]


@dataclass(frozen=True)
class EiaTable:
    valid_as_of: dt.date
    catalogue: str
    contact: Contact
    measures: Dict[str, Measure]
    flags: Dict[str, Flag]
    unknown: UnknownGuidance
    categories: Tuple[EiaCategory, ...]

    def category(self, category_id: str) -> EiaCategory:
        for c in self.categories:
            if c.id == category_id:
                return c
        raise KeyError(category_id)


@dataclass(frozen=True)
class Knowledge:
    directory: Path
    services: Dict[str, Service]
    contacts: Dict[str, Contact]
    eia: EiaTable

    def service(self, service_id: str) -> Service:
        return self.services[service_id]


# ---------------------------------------------------------------- loading


def _label(directory: Path, filename: str) -> str:
    path = directory / filename
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(directory: Path, filename: str, problems: List[str]) -> Optional[dict]:
    label = _label(directory, filename)
    path = directory / filename
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{label}: file not found")
        return None
    except UnicodeDecodeError as exc:
        problems.append(f"{label}: not UTF-8 text ({exc.reason})")
        return None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(f"{label}: YAML syntax error{where}: {problem}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{label}: the file must be a mapping (key: value) at the top level")
        return None
    # Keys starting with "_" hold YAML anchors shared inside the file.
    return {k: v for k, v in data.items() if not str(k).startswith("_")}


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "__root__":
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def _format_errors(prefix: str, exc: ValidationError) -> List[str]:
    lines = []
    for err in exc.errors():
        loc = _loc(err["loc"])
        lines.append(f"{prefix}{loc}: {err['msg']}" if loc else f"{prefix}{err['msg']}")
    return lines


def _validate(model: type, data: dict, prefix: str, problems: List[str]):
    try:
        return model.parse_obj(data)
    except ValidationError as exc:
        problems.extend(_format_errors(prefix, exc))
        return None


def _entries(label: str, key: str, items: List[dict], model: type, problems: List[str]) -> list:
    """Validate each list entry on its own so errors name the entry id."""
    out, seen = [], set()
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            problems.append(f"{label}: {key}[{index}]: must be a mapping with an id")
            continue
        entry_id = raw.get("id")
        name = f"entry '{entry_id}'" if isinstance(entry_id, str) and entry_id else f"{key}[{index}]"
        if entry_id in seen:
            problems.append(f"{label}: {name}: id: duplicate id '{entry_id}'")
            continue
        seen.add(entry_id)
        obj = _validate(model, raw, f"{label}: {name}: ", problems)
        if obj is not None:
            out.append(obj)
    return out


def _refusals(label: str, data: Any, problems: List[str], path: str = "", entry: str = "") -> None:
    """Walk raw YAML data; every string must avoid the refusal phrases."""
    if isinstance(data, dict):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            _refusals(label, v, problems, sub, entry)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            sub_entry = entry
            sub_path = f"{path}[{i}]"
            if not entry and isinstance(v, dict) and isinstance(v.get("id"), str):
                sub_entry, sub_path = f"entry '{v['id']}': ", ""
            _refusals(label, v, problems, sub_path, sub_entry)
    elif isinstance(data, str):
        phrase = refusal_in(data)
        if phrase:
            problems.append(
                f"{label}: {entry}{path or '(value)'}: contains the refusal phrase '{phrase}'"
                " — say how to get it done instead (只说如何办)")


def _load(directory: Path) -> Knowledge:
    problems: List[str] = []
    raw = {name: _read_yaml(directory, name, problems) for name in (CONTACTS_FILE, SERVICES_FILE, EIA_FILE)}
    labels = {name: _label(directory, name) for name in raw}
    for name, data in raw.items():
        if data is not None:
            _refusals(labels[name], data, problems)

    # contacts
    contacts: Dict[str, Contact] = {}
    data = raw[CONTACTS_FILE]
    if data is not None:
        label = labels[CONTACTS_FILE]
        top = _validate(ContactsFile, data, f"{label}: ", problems)
        if top is not None:
            for c in _entries(label, "contacts", top.contacts, Contact, problems):
                contacts[c.id] = c
            for c in contacts.values():
                if c.fallback:
                    if c.fallback not in contacts:
                        problems.append(f"{label}: entry '{c.id}': fallback: unknown contact id '{c.fallback}'")
                    else:
                        c._fallback_contact = contacts[c.fallback]

    def ref(label: str, entry: str, field: str, contact_id: str) -> Optional[Contact]:
        if contact_id not in contacts:
            if raw[CONTACTS_FILE] is not None:
                problems.append(
                    f"{label}: entry '{entry}': {field}: unknown contact id '{contact_id}' (not in {CONTACTS_FILE})")
            return None
        return contacts[contact_id]

    # services
    services: Dict[str, Service] = {}
    data = raw[SERVICES_FILE]
    if data is not None:
        label = labels[SERVICES_FILE]
        top = _validate(ServicesFile, data, f"{label}: ", problems)
        if top is not None:
            for s in _entries(label, "services", top.services, Service, problems):
                services[s.id] = s
                s._where_contact = ref(label, s.id, "where", s.where)
                s._contact_contact = ref(label, s.id, "contact", s.contact)
            missing = [sid for sid in SERVICE_IDS if sid not in services]
            ids_in_file = {e.get("id") for e in top.services if isinstance(e, dict)}
            for sid in missing:
                if sid not in ids_in_file:
                    problems.append(f"{label}: services: missing the entry '{sid}'")

    # EIA table
    eia: Optional[EiaTable] = None
    data = raw[EIA_FILE]
    if data is not None:
        label = labels[EIA_FILE]
        top = _validate(EiaFile, data, f"{label}: ", problems)
        if top is not None:
            cats = _entries(label, "categories", top.categories, EiaCategory, problems)
            _check_categories(label, top, cats, problems)
            contact = contacts.get(top.contact)
            if contact is None and raw[CONTACTS_FILE] is not None:
                problems.append(f"{label}: contact: unknown contact id '{top.contact}' (not in {CONTACTS_FILE})")
            if contact is not None:
                eia = EiaTable(top.valid_as_of, top.catalogue, contact, dict(top.measures),
                               dict(top.flags), top.unknown, tuple(cats))

    if problems:
        raise KnowledgeError(problems)
    assert eia is not None
    return Knowledge(directory=directory, services=services, contacts=contacts, eia=eia)


def _check_categories(label: str, top: EiaFile, cats: List[EiaCategory], problems: List[str]) -> None:
    owner: Dict[str, str] = {}
    for c in cats:
        p = f"{label}: entry '{c.id}': "
        for i, t in enumerate(c.thresholds):
            m = top.measures.get(t.measure)
            if m is None:
                problems.append(f"{p}thresholds[{i}].measure: unknown measure '{t.measure}'"
                                " (declare it under measures)")
            elif m.unit != t.unit:
                problems.append(f"{p}thresholds[{i}].unit: '{t.unit}' differs from the unit of measure "
                                f"'{t.measure}' ('{m.unit}')")
            for f in ([t.with_flag] if t.with_flag else []) + list(t.without_flags):
                if f not in top.flags:
                    problems.append(f"{p}thresholds[{i}]: unknown flag '{f}' (declare it under flags)")
        for i, cond in enumerate(c.conditions):
            if cond.flag not in top.flags:
                problems.append(f"{p}conditions[{i}].flag: unknown flag '{cond.flag}' (declare it under flags)")
        for i, kw in enumerate(c.keywords):
            if kw in owner and owner[kw] != c.id:
                problems.append(f"{p}keywords[{i}]: '{kw}' is already a keyword of '{owner[kw]}'")
            owner.setdefault(kw, c.id)


@lru_cache(maxsize=8)
def _cached(directory: Path) -> Knowledge:
    return _load(directory)


def load_knowledge(directory: Optional[Path] = None) -> Knowledge:
    """Validated knowledge from `directory` (default: Settings().knowledge_dir).

    Loaded once per directory and cached; `clear_cache()` forces a re-read
    (e.g. after the bureau edited a file). Raises KnowledgeError.
    """
    directory = Path(directory) if directory is not None else Settings().knowledge_dir
    return _cached(directory.resolve())


def knowledge_for(settings: Settings) -> Knowledge:
    """The knowledge for a configured process (Settings.knowledge_dir)."""
    return load_knowledge(settings.knowledge_dir)


def clear_cache() -> None:
    _cached.cache_clear()


def placeholders(knowledge: Knowledge) -> List[str]:
    """'contact.field' for every contact value still marked placeholder."""
    out = []
    for c in knowledge.contacts.values():
        for field in ("phone", "address", "office_hours"):
            if getattr(c, field).placeholder:
                out.append(f"{c.id}.{field}")
    return out
