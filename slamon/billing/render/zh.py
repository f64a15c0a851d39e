"""The statement's words in Chinese: the headings of every table, and the JSON's words and reasons
as a bureau's contract manager reads them (SLA.md's terms: 在线率, 完好率, 修复时限, 扣款, …).

The JSON document stays in English and stays the authority. A deduction's Chinese reason is a
translation of its English reason (`reason_zh`), read with the patterns of the reasons
slamon/billing/deductions.py writes; one it does not recognise is shown in English only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from slamon.units import format_duration

# --- headings: one Chinese heading per JSON key (CSV, XLSX, PDF) --------------------------------

HEADINGS: Mapping[str, str] = {
    # statement
    "section": "栏目",
    "contract": "合同编号",
    "vendor": "乙方（服务商）",
    "buyer": "甲方（采购人）",
    "month": "考核月份",
    "currency": "币种",
    "status": "状态",
    "revision": "版本",
    "fee_total": "租赁服务费合计",
    "deduction_total": "扣款合计",
    "payable": "应付金额",
    "online_rate": "在线率",
    "intact_rate": "完好率",
    "hash": "结算单哈希",
    "inputs_sha256": "输入数据哈希",
    "replaces": "替代版本哈希",
    # devices
    "id": "编号",
    "kind": "设备类型",
    "site": "点位编号",
    "channels": "路数",
    "fee": "服务费",
    "scheduled_s": "计划服务时长（秒）",
    "excluded_s": "免责时长（秒）",
    "down_s": "计入停机时长（秒）",
    "degraded_s": "图像降质时长（秒）",
    "unknown_s": "监测未知时长（秒）",
    "availability": "可用率",
    "deduction": "扣款",
    # outages
    "device": "设备编号",
    "start": "开始",
    "end": "结束",
    "open": "未恢复",
    "end_reason": "结束原因",
    "counted_s": "本月计入时长（秒）",
    "counted_total_s": "累计计入时长（秒）",
    "causes": "原因分解（秒）",
    "overrun_hours": "超时小时数",
    "first_failure": "首次探测失败",
    "last_failure": "最后探测失败",
    "recovered": "恢复时间",
    "gaps": "监测中断",
    # exclusions
    "category": "免责类别",
    "honoured": "是否认可",
    "reason": "原因",
    "approved_by": "审批人",
    "not_honoured_because": "不予认可原因",
    # deductions
    "rule": "扣款规则",
    "kpi": "考核指标",
    "outage_start": "故障开始",
    "amount": "金额",
}

# where a key means something more particular in one table
SECTION_HEADINGS: Mapping[tuple[str, str], str] = {
    ("device", "id"): "设备编号",
    ("exclusion", "id"): "免责编号",
    ("exclusion", "status"): "审批状态",
    ("exclusion", "reason"): "免责原因",
    ("deduction", "reason"): "扣款原因",
    ("outage", "deduction"): "超时扣款",
    ("device", "deduction"): "设备扣款",
}

SECTIONS: Mapping[str, str] = {
    "statement": "结算单",
    "device": "设备",
    "outage": "故障",
    "exclusion": "免责",
    "deduction": "扣款",
}

# --- the JSON's words ---------------------------------------------------------------------------

STATUS = {"draft": "草稿", "issued": "正式"}
KIND = {"camera": "摄像机", "switch": "交换机", "link": "传输链路"}
KPI = {"online_rate": "在线率", "intact_rate": "完好率"}
RULE = {
    "availability_tier": "可用率分档扣款",
    "repair_overrun": "修复超时扣款",
    "fleet_kpi": "整体指标扣款",
    "kpi_shortfall": "指标差额按点扣款",
    "score_card": "百分制考核扣款",
    "cap": "封顶核减",
}
CATEGORY = {
    "maintenance": "计划维护",
    "power": "停电",
    "fiber_cut": "光缆中断",
    "force_majeure": "不可抗力",
    "customer": "甲方原因",
}
EXCLUSION_STATUS = {"proposed": "待审批", "approved": "已批准", "rejected": "已驳回"}
END_REASON = {
    "recovered": "已恢复",
    "unknown": "监测中断后恢复",
    "out_of_service": "设备退出服务",
}
AREA = {"urban": "城区", "rural": "乡镇"}
UNKNOWN_COUNTS_AS = {"up": "计为在线", "down": "计为停机", "excluded": "不计入考核"}
_UNITS = {"d": "天", "h": "小时", "m": "分", "s": "秒", "ms": "毫秒", "us": "微秒"}


def heading(section: str, key: str) -> str:
    """The Chinese heading of a column of one of the statement's tables."""
    return SECTION_HEADINGS.get((section, key)) or HEADINGS.get(key, key)


def word(table: Mapping[str, str], key: str | None) -> str:
    """The Chinese for a word of the JSON; the word itself when there is none."""
    return "" if key is None else table.get(key, key)


def duration(seconds: float) -> str:
    """Exact, in Chinese units: 1天6小时20分, 36分, 0."""
    return duration_text(format_duration(timedelta(seconds=seconds))) if seconds else "0"


def duration_text(text: str) -> str:
    """A duration as slamon writes it (`1d6h20m`) in Chinese units (`1天6小时20分`)."""
    return re.sub(r"(\d+)(ms|us|d|h|m|s)", lambda m: m[1] + _UNITS[m[2]], text)


def cause(key: str) -> str:
    """`device`, `upstream:<id>`, `excluded:<category>` in Chinese."""
    if key == "device":
        return "设备自身"
    kind, _, rest = key.partition(":")
    if kind == "upstream":
        return f"上游 {rest}"
    if kind == "excluded":
        return f"免责（{word(CATEGORY, rest)}）"
    return key


def why_not_honoured(text: str | None) -> str:
    """causes.why_not_honoured's reasons in Chinese."""
    if text is None:
        return ""
    if m := re.fullmatch(r"status is (\w+)", text):
        return f"状态为{word(EXCLUSION_STATUS, m[1])}"
    if m := re.fullmatch(r"contract (\S+) does not honour category (\w+)", text):
        return f"合同 {m[1]} 不认可“{word(CATEGORY, m[2])}”类免责"
    return text


# --- deduction reasons (the patterns of slamon/billing/deductions.py) ---------------------------

_DURATION = r"[0-9dhmsu]+"
_NUMBER = r"-?[0-9.]+(?:E[+-]?[0-9]+)?"
_TIER = re.compile(rf"availability (?P<rate>{_NUMBER}) < (?P<below>{_NUMBER})")
_OVERRUN = re.compile(
    rf"(?P<total>{_DURATION}) > (?P<deadline>{_DURATION}) \((?P<area>[^)]*)\): (?P<hours>\d+) started hours?"
    rf"(?:, capped at (?P<cap>{_NUMBER}) per incident)?"
)
_KPI = re.compile(rf"(?P<kpi>online_rate|intact_rate) (?P<rate>{_NUMBER}) < (?P<target>{_NUMBER})")
_CAP = re.compile(
    rf"deductions (?P<total>{_NUMBER}) exceed the cap of (?P<percent>{_NUMBER})% of the fee total "
    rf"(?P<fee>{_NUMBER}) = (?P<limit>{_NUMBER})"
)


def reason_zh(rule: str, reason: str) -> str | None:
    """A deduction line's reason in Chinese, or None when it is not one slamon writes."""
    if rule == "availability_tier" and (m := _TIER.fullmatch(reason)):
        return f"本月可用率 {m['rate']}，低于分档线 {m['below']}"
    if rule == "repair_overrun" and (m := _OVERRUN.fullmatch(reason)):
        text = (
            f"故障累计计入 {duration_text(m['total'])}，超过{word(AREA, m['area'])}修复时限 "
            f"{duration_text(m['deadline'])}；超时不足 1 小时按 1 小时计，共 {m['hours']} 小时"
        )
        return text + (f"，单次封顶 {m['cap']}" if m["cap"] else "")
    if rule == "fleet_kpi" and (m := _KPI.fullmatch(reason)):
        return f"本月{word(KPI, m['kpi'])} {m['rate']}，低于考核目标 {m['target']}"
    if rule == "cap" and (m := _CAP.fullmatch(reason)):
        return (
            f"扣款合计 {m['total']} 超过封顶额（服务费合计 {m['fee']} × {m['percent']}% = {m['limit']}），"
            f"核减超出部分"
        )
    return None
