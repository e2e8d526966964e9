"""Class groups (案件类别组): the few families of 小类 that a shift lead thinks in.

A surge is a family of problems arriving together — a rainstorm brings 积水 and 井盖/雨水箅子
cases, a market day 占道经营 and 无照经营游商 — so surge alerts count cases per group, not per
小类 (a single 小类 is too thin to learn a baseline from). The groups are matched on the 小类
name; the first matching pattern wins, and classes no pattern matches fall into 其他事件 or
其他部件 by their kind. The simulator's handling times (``feeds/behaviour.py``) use the same
groups.
"""

from __future__ import annotations

import re

from dashboard.rules.classification import ClassEntry
from dashboard.rules.vocab import Kind

# (group, 小类 name pattern), first match wins.
CLASS_GROUPS: tuple[tuple[str, str], ...] = (
    ("小广告", r"小广告"),
    ("垃圾与保洁", r"暴露垃圾|积存垃圾|道路不洁|道路保洁"),
    ("乱堆乱放", r"乱堆"),
    ("占道与店外经营", r"占道|无照经营|店外经营|出店经营"),
    ("乱停放", r"乱停放"),
    ("沿街晾挂", r"沿街晾挂"),
    ("井盖与雨水口", r"井盖|箅子|积水"),
    ("垃圾箱", r"垃圾(箱|桶)|果皮箱"),
    ("路灯", r"路灯"),
    ("绿化", r"绿地|行道树"),
    ("施工渣土", r"施工|渣土|工地"),
)
OTHER_EVENT_GROUP = "其他事件"
OTHER_COMPONENT_GROUP = "其他部件"
GROUP_PATTERNS: dict[str, str] = dict(CLASS_GROUPS)


def class_group(entry: ClassEntry) -> str:
    """The group of a class (by its 小类 name; by kind when no pattern matches)."""
    for group, pattern in CLASS_GROUPS:
        if re.search(pattern, entry.minor_name):
            return group
    return OTHER_EVENT_GROUP if entry.kind is Kind.EVENT else OTHER_COMPONENT_GROUP
