"""What the pages' AG Grid tables share: built-in texts in Chinese and no type inference (no English)."""

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

# Our cells arrive formatted ("87.5%", "100.00", a rank or 样本不足): AG Grid must not infer a
# data type from the first row, or a 样本不足 under an inferred number shows "Invalid Number"
# and a number column sorts as text. Sorting is the pages' own comparator.
NO_TYPE_INFERENCE = {"cellDataType": False}
