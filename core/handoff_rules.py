"""When a conversation goes to a person, and what the user is told then.

Pure logic, no I/O: the action server (actions/handoff.py) and the gateway
(bot/handoff.py) both use it; the escalation store is core/escalations.py.

Triggers decided here:
- `is_angry(text)`: a small lexicon of abuse and anger words plus repeated
  punctuation. One abuse word is enough; anger phrases and "！！！" only count
  together (two signals), so an agitated but polite report ("河里有死鱼！！！")
  still goes through the complaint form.
- `is_repeat(text, previous)`: the same question (normalised text) three times
  in a row.
Office hours come from knowledge/contacts.yml (through core/knowledge.py when it
offers them); `handoff_text()` composes the message the user gets.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Iterable, Sequence

from core.workdays import is_working_day  # public holidays and make-up working days

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
HOTLINE = "12369"

# --- reasons -----------------------------------------------------------------
R_REQUEST = "request_human"
R_FALLBACK = "fallback_twice"
R_URGENT = "urgent_complaint"
R_REPEAT = "repeated_question"
R_ACTION_FAILED = "action_failed"
R_ANGRY = "angry"
R_BOT_DOWN = "bot_unavailable"

REASON_LABELS = {
    R_REQUEST: "用户要求转人工",
    R_FALLBACK: "连续两次没听懂",
    R_URGENT: "紧急投诉",
    R_REPEAT: "同一问题问了三遍",
    R_ACTION_FAILED: "机器人处理出错",
    R_ANGRY: "用户情绪激动",
    R_BOT_DOWN: "机器人暂时不可用",
}


def reason_label(reason: str) -> str:
    return REASON_LABELS.get(reason, reason or "其他")


# --- normalisation and repeats -------------------------------------------------
_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)
REPEAT_COUNT = 3
REPEAT_MIN_CHARS = 4   # "好的" / "是" / "匿名" said three times is not a question


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, no spaces or punctuation."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    return _STRIP.sub("", t)


def is_repeat(current: str, previous: Sequence[str]) -> bool:
    """True when `current` and the two messages before it (newest first in
    `previous`, already normalised) are the same question."""
    cur = normalise(current)
    if len(cur) < REPEAT_MIN_CHARS or len(previous) < REPEAT_COUNT - 1:
        return False
    return all(p == cur for p in previous[: REPEAT_COUNT - 1])


# --- anger -----------------------------------------------------------------------
# Abuse: one is enough. Words that also name pollution (垃圾, 废物) are not here.
_ABUSE = (
    "傻逼", "傻b", "煞笔", "沙比", "妈的", "他妈", "操你", "草泥马", "尼玛", "你妈",
    "滚蛋", "滚开", "去死", "混蛋", "王八蛋", "狗屁", "脑残", "白痴", "弱智", "废物机器人",
    "垃圾机器人", "垃圾客服", "垃圾系统", "什么破", "破机器人", "狗东西",
)
_ABUSE_LATIN = re.compile(r"(?<![a-z])(sb|tmd|nmsl|wtf|fuck\w*)(?![a-z])")
# Anger and exasperation: two signals (or one plus repeated punctuation) make it.
_ANGER = (
    "气死", "太过分", "过分了", "愤怒", "火大", "恼火", "受够了", "忍无可忍", "敷衍", "不作为",
    "踢皮球", "忽悠", "糊弄", "有没有人管", "管不管", "没人管", "没用", "听不懂人话",
    "答非所问", "烦死", "骂人", "投诉你们", "曝光你们", "找媒体", "找领导", "要投诉",
)
_REPEATED_PUNCT = re.compile(r"[!！?？]{3,}|(?:[!！][?？]|[?？][!！]){2,}")


def anger_signals(text: str) -> list[str]:
    """What in `text` sounds angry (for the staff's reason line); [] when calm."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    compact = re.sub(r"\s+", "", t)
    found = [w for w in _ABUSE if w in compact] + _ABUSE_LATIN.findall(t)
    if found:
        return ["辱骂:" + w for w in found]
    signals = ["激动:" + w for w in _ANGER if w in compact]
    if _REPEATED_PUNCT.search(compact):
        signals.append("连续标点")
    return signals if len(signals) >= 2 else []


def is_angry(text: str) -> bool:
    return bool(anger_signals(text))


# --- office hours -------------------------------------------------------------------
DEFAULT_HOURS_TEXT = "工作日8:30-12:00、14:30-17:30，法定节假日除外"
_INTERVAL = re.compile(r"(\d{1,2})[:：](\d{2})\s*[-－—~～至到]+\s*(\d{1,2})[:：](\d{2})")


@dataclass(frozen=True)
class OfficeHours:
    intervals: tuple[tuple[time, time], ...]
    label: str

    @classmethod
    def parse(cls, text: str | None) -> "OfficeHours":
        """From a text such as "周一至周五 上午8:30-12:00 下午14:30-17:30"; defaults if none found."""
        spans = []
        for m in _INTERVAL.finditer(text or ""):
            h1, m1, h2, m2 = (int(x) for x in m.groups())
            if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60 and (h1, m1) < (h2, m2):
                spans.append((time(h1, m1), time(h2, m2)))
        if not spans:
            return DEFAULT_HOURS
        return cls(tuple(sorted(spans)), (text or "").strip())


DEFAULT_HOURS = OfficeHours(((time(8, 30), time(12, 0)), (time(14, 30), time(17, 30))), DEFAULT_HOURS_TEXT)


def is_office_open(now: datetime, hours: OfficeHours = DEFAULT_HOURS) -> bool:
    local = now.astimezone(SHANGHAI)
    if not is_working_day(local.date()):
        return False
    t = local.time()
    return any(a <= t < b for a, b in hours.intervals)


def next_opening(now: datetime, hours: OfficeHours = DEFAULT_HOURS) -> datetime:
    """The next time staff are at work (now itself when open)."""
    local = now.astimezone(SHANGHAI)
    if is_office_open(local, hours):
        return local
    day = local.date()
    for _ in range(60):
        if is_working_day(day):
            for start, _end in hours.intervals:
                at = datetime.combine(day, start, tzinfo=SHANGHAI)
                if at > local:
                    return at
        day += timedelta(days=1)
    return local + timedelta(days=1)


_WEEKDAYS = "一二三四五六日"


def describe_time(at: datetime, now: datetime) -> str:
    """"今天14:30" / "明天8:30" / "12月1日（周一）8:30"."""
    at, now = at.astimezone(SHANGHAI), now.astimezone(SHANGHAI)
    hm = f"{at.hour}:{at.minute:02d}"
    delta = (at.date() - now.date()).days
    if delta == 0:
        return f"今天{hm}"
    if delta == 1:
        return f"明天{hm}"
    return f"{at.month}月{at.day}日（周{_WEEKDAYS[at.weekday()]}）{hm}"


# --- what the user is told ------------------------------------------------------------
MINUTES_PER_WAITING = 5


def expected_wait_minutes(ahead: int) -> int:
    """A rough figure for the user: 5 minutes, plus 5 for each conversation ahead."""
    return MINUTES_PER_WAITING * (max(ahead, 0) + 1)


def handoff_text(now: datetime, hours: OfficeHours = DEFAULT_HOURS, ahead: int = 0,
                 urgent: bool = False, already_open: bool = False, lead: str = "好的，") -> str:
    """The message a user gets when the conversation goes to a person.

    `lead` opens it ("好的，", or "抱歉，我还是没明白，" after two fallbacks).
    """
    emergency = f"如遇饮用水污染、死鱼、化学品泄漏、起火爆炸等紧急情况，请立即拨打{HOTLINE}环保举报热线。"
    if urgent:
        emergency = f"情况紧急，请同时立即拨打{HOTLINE}环保举报热线，工作人员会优先处理。"
    head = "您的对话已在工作人员的队列中。" if already_open else f"{lead}已为您转接人工服务。"
    after = "接下来您发的文字和图片都会直接转给工作人员，由工作人员回复您。"
    if is_office_open(now, hours):
        wait = expected_wait_minutes(ahead)
        queue = f"前面还有{ahead}位，" if ahead > 0 else ""
        return f"{head}现在是工作时间，{queue}预计约{wait}分钟内有工作人员回复您。{after}{emergency}"
    opening = describe_time(next_opening(now, hours), now)
    return (f"{head}现在是非工作时间，工作人员将在{opening}上班后尽快回复您（工作时间：{hours.label.rstrip('。')}）。"
            f"{after}{emergency}")


FORWARDED_TEXT = "已转给工作人员，请稍候。"
TAKEOVER_TEXT = ("工作人员暂时没有回复，现在由智能助手继续为您服务。"
                 f"您的问题已留给工作人员，他们上班后会跟进；紧急情况请拨打{HOTLINE}。"
                 "需要人工时回复“转人工”。")
RESOLVED_TEXT = "本次人工服务已结束，感谢您的耐心。之后由智能助手继续为您服务，需要人工时回复“转人工”。"
HANDED_BACK_TEXT = "工作人员已把对话交回智能助手，您可以继续提问；需要人工时回复“转人工”。"


def first_office_hours(texts: Iterable[str | None]) -> OfficeHours:
    """The first text among `texts` that yields office hours; the defaults otherwise."""
    for t in texts:
        parsed = OfficeHours.parse(t)
        if parsed is not DEFAULT_HOURS:
            return parsed
    return DEFAULT_HOURS
