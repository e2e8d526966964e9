"""What the pages' AG Grid tables share: its built-in texts in Chinese (the pages show no English)."""

from __future__ import annotations

LOCALE_TEXT = {
    "noRowsToShow": "暂无",
    "loadingOoo": "正在加载…",
    "page": "第",
    "of": "页，共",
    "to": "至",
    "more": "更多",
    "firstPage": "首页",
    "lastPage": "末页",
    "nextPage": "下一页",
    "previousPage": "上一页",
}
