"""The drill-down's case table as a file: CSV (UTF-8 with a BOM) or XLSX (openpyxl).

Domain only (no Dash, no Flask): rows of ``dashboard.figures.explore.export_rows`` in, bytes out,
with ``explore.COLUMNS``' zh-CN headers. Every cell goes through ``explore.export_cell``
(formula-injection guard). callbacks/explore.py builds the HTTP response around them.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from dashboard.figures import explore


def to_csv(rows: Any) -> bytes:
    """CSV in UTF-8 with a BOM (Excel then reads the Chinese right), formula-safe cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([label for _, label in explore.COLUMNS])
    for row in rows:
        writer.writerow([explore.export_cell(row.get(key, "")) for key, _ in explore.COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(rows: Any) -> bytes:
    """The case table as one sheet, 案件列表."""
    return to_xlsx_sheets([("案件列表", rows)])


def to_xlsx_sheets(sheets: Any, extra: tuple[tuple[str, str], ...] = (),
                   tables: Any = ()) -> bytes:
    """One sheet per (title, rows) with the case table's columns, then ``extra`` columns
    ((key, header), e.g. the shift handover's 超时环节) where the rows have them; then one sheet
    per (title, columns, rows) of ``tables`` with its own columns."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook(write_only=False)
    wb.remove(wb.active)
    plan = [(title, list(explore.COLUMNS) + [c for c in extra if any(c[0] in r for r in rows)], rows)
            for title, rows in ((t, list(r)) for t, r in sheets)]
    for title, columns, rows in [*plan, *tables]:
        ws = wb.create_sheet(title)
        ws.append([label for _, label in columns])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append([explore.export_cell(_xlsx_text(row.get(key, ""))) for key, _ in columns])
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _xlsx_text(value: Any) -> Any:
    # openpyxl refuses control characters; a description from the feed may carry some.
    if isinstance(value, str):
        return "".join(ch if ch in "\t\n\r" or ord(ch) >= 32 else " " for ch in value)
    return value


__all__ = ["to_csv", "to_xlsx", "to_xlsx_sheets"]
