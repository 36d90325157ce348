"""The Official Account menu, defined once in knowledge/menu.yml (pure, no I/O
except reading that file).

- `load_menu()` reads and checks the file (WeChat's limits, known intents);
- `wechat_menu_json()` is the body of WeChat's menu create API
  (`cgi-bin/menu/create`);
- `Menu.action(key)` says what a click does: trigger an intent, send a text
  as if typed, or show the welcome message. The WeChat CLICK event and the
  web chat's menu buttons both use it, so the two channels behave alike.

    python -m bot.menu        # check the file, print the JSON for WeChat's menu API
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.settings import PROJECT_ROOT

MENU_FILE = PROJECT_ROOT / "knowledge" / "menu.yml"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"

MAX_TOP = 3
MAX_SUB = 5
MAX_TOP_NAME_BYTES = 16  # WeChat: 4 Chinese characters
MAX_SUB_NAME_BYTES = 60  # WeChat: 60 bytes
KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
INTENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class MenuError(ValueError):
    """knowledge/menu.yml breaks a rule; the message says which and where."""


@dataclass(frozen=True)
class MenuAction:
    kind: str  # "intent" | "text" | "welcome"
    value: str = ""


@dataclass(frozen=True)
class MenuItem:
    name: str
    key: str
    action: MenuAction


@dataclass(frozen=True)
class MenuGroup:
    name: str
    items: tuple[MenuItem, ...]


@dataclass(frozen=True)
class Menu:
    welcome: str
    groups: tuple[MenuGroup, ...]

    def action(self, key: str) -> MenuAction | None:
        for g in self.groups:
            for item in g.items:
                if item.key == key:
                    return item.action
        return None

    def items(self) -> list[MenuItem]:
        return [i for g in self.groups for i in g.items]


def _domain_intents(domain_file: Path) -> set[str]:
    data = yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}
    out = set()
    for i in data.get("intents") or []:
        out.add(next(iter(i)) if isinstance(i, dict) else str(i))
    return out


def _item(raw: object, where: str, intents: set[str] | None) -> MenuItem:
    if not isinstance(raw, dict):
        raise MenuError(f"{where}: expected a mapping with name, key and intent/text/show")
    name, key = str(raw.get("name", "")).strip(), str(raw.get("key", "")).strip()
    if not name or len(name.encode()) > MAX_SUB_NAME_BYTES:
        raise MenuError(f"{where}: name must be 1..{MAX_SUB_NAME_BYTES} bytes (about 20 Chinese characters)")
    if not KEY_RE.match(key):
        raise MenuError(f"{where}: key {key!r} must be letters, digits or _")
    given = [f for f in ("intent", "text", "show") if raw.get(f) not in (None, "")]
    if len(given) != 1:
        raise MenuError(f"{where} ({name}): give exactly one of intent, text, show")
    field_ = given[0]
    value = str(raw[field_]).strip()
    if field_ == "intent":
        if not INTENT_RE.match(value):
            raise MenuError(f"{where} ({name}): bad intent name {value!r}")
        if intents is not None and value not in intents:
            raise MenuError(f"{where} ({name}): intent {value!r} is not in domain.yml")
        return MenuItem(name, key, MenuAction("intent", value))
    if field_ == "text":
        return MenuItem(name, key, MenuAction("text", value))
    if value != "welcome":
        raise MenuError(f"{where} ({name}): show can only be 'welcome'")
    return MenuItem(name, key, MenuAction("welcome"))


def parse_menu(data: object, intents: set[str] | None = None) -> Menu:
    """Check and build a `Menu` from the YAML data (pure)."""
    if not isinstance(data, dict):
        raise MenuError("menu.yml must be a mapping")
    for f in ("source", "valid_as_of", "welcome", "menu"):
        if not data.get(f):
            raise MenuError(f"menu.yml: {f} is missing")
    groups_raw = data["menu"]
    if not isinstance(groups_raw, list) or not 1 <= len(groups_raw) <= MAX_TOP:
        raise MenuError(f"menu: 1..{MAX_TOP} top-level buttons")
    groups, keys = [], set()
    for gi, g in enumerate(groups_raw, 1):
        if not isinstance(g, dict):
            raise MenuError(f"menu[{gi}]: expected a mapping")
        gname = str(g.get("name", "")).strip()
        if not gname or len(gname.encode()) > MAX_TOP_NAME_BYTES:
            raise MenuError(f"menu[{gi}]: name must be 1..{MAX_TOP_NAME_BYTES} bytes (4 Chinese characters)")
        items_raw = g.get("items")
        if not isinstance(items_raw, list) or not 1 <= len(items_raw) <= MAX_SUB:
            raise MenuError(f"menu[{gi}] ({gname}): 1..{MAX_SUB} items")
        items = tuple(_item(r, f"menu[{gi}].items[{ii}]", intents) for ii, r in enumerate(items_raw, 1))
        for it in items:
            if it.key in keys:
                raise MenuError(f"menu: key {it.key} used twice")
            keys.add(it.key)
        groups.append(MenuGroup(gname, items))
    return Menu(welcome=str(data["welcome"]).strip(), groups=tuple(groups))


def load_menu(path: Path = MENU_FILE, domain_file: Path | None = DOMAIN_FILE) -> Menu:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    intents = _domain_intents(domain_file) if domain_file else None
    return parse_menu(data, intents)


def wechat_menu_json(menu: Menu) -> dict:
    """Body for https://api.weixin.qq.com/cgi-bin/menu/create (all CLICK buttons)."""
    return {"button": [
        {"name": g.name, "sub_button": [{"type": "click", "name": i.name, "key": i.key} for i in g.items]}
        for g in menu.groups
    ]}


def web_menu_json(menu: Menu) -> dict:
    """What the web chat page needs: the welcome text and the buttons."""
    return {"welcome": menu.welcome, "menu": [
        {"name": g.name, "items": [{"name": i.name, "key": i.key} for i in g.items]} for g in menu.groups
    ]}


def main() -> int:
    try:
        menu = load_menu()
    except (MenuError, OSError, yaml.YAMLError) as e:
        print(f"knowledge/menu.yml: {e}", file=sys.stderr)
        return 1
    # WeChat shows \\uXXXX escapes literally in menus: keep the UTF-8 characters.
    print(json.dumps(wechat_menu_json(menu), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
