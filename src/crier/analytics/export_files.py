"""The files an export is written to: CSV rows, an XLSX workbook, a PDF report.

Everything here is plain synchronous writing of what `crier.analytics.exports` read; the
rows come a partition at a time, so neither the CSV nor the workbook's account sheet ever
holds more than one partition in memory (XlsxWriter's constant-memory mode writes each row
out as it is given).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import xlsxwriter
from reportlab.graphics.charts.legends import LineLegend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from crier.analytics.repository import ExportRow
from crier.analytics.schemas import AnalyticsData, Series, TopPosts

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
SHEET_ROWS = 1_048_576
"""Rows of one worksheet, the header included: a longer export goes on to another sheet."""
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Account:
    platform: str
    handle: str
    name: str


@dataclass(frozen=True)
class Heading:
    """What an export says about itself."""

    title: str
    timezone: str
    first: date
    last: date
    granularity: str
    comparison: str | None
    compared: tuple[date, date] | None
    made_at: datetime


def header(comparison: bool) -> list[str]:
    """The CSV's (and the account sheet's) column names."""
    names = ["period", "social_account_id", "platform", "handle", "account", "metric", "value"]
    return names + (["previous_period", "previous_value"] if comparison else [])


def _text(value: str) -> str:
    """Text a spreadsheet would not take for a formula (OWASP's CSV injection advice)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() else repr(value)


def _cells(
    row: ExportRow,
    accounts: Mapping[UUID, Account],
    before: Mapping[date, date] | None,
) -> list[Any]:
    account = accounts.get(row.social_account_id) or Account("", "", "")
    cells: list[Any] = [
        row.period,
        str(row.social_account_id),
        account.platform,
        account.handle,
        account.name,
        row.metric,
        row.value,
    ]
    if before is not None:
        cells += [before.get(row.period), row.previous_value]
    return cells


def csv_text(
    rows: Sequence[ExportRow],
    accounts: Mapping[UUID, Account],
    before: Mapping[date, date] | None,
    *,
    with_header: bool = False,
) -> str:
    """Rows as CSV lines (RFC 4180, CRLF), the header first if asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if with_header:
        writer.writerow(header(before is not None))
    for row in rows:
        cells = _cells(row, accounts, before)
        writer.writerow(
            [
                c.isoformat()
                if isinstance(c, date)
                else _number(c)
                if isinstance(c, float) or c is None
                else _text(c)
                for c in cells
            ]
        )
    return out.getvalue()


def _label(metric: str) -> str:
    return metric.replace("_", " ").capitalize()


def _figure(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"


def _change(series: Series) -> str:
    if series.delta is None:
        return ""
    sign = "+" if series.delta >= 0 else "-"
    ratio = f" ({sign}{abs(series.delta_ratio):.1%})" if series.delta_ratio is not None else ""
    return f"{sign}{_figure(abs(series.delta))}{ratio}"


def _describe(heading: Heading) -> list[str]:
    lines = [
        f"{heading.first:%d %b %Y} to {heading.last:%d %b %Y}, by {heading.granularity}, "
        f"days in {heading.timezone}",
    ]
    if heading.compared is not None and heading.comparison is not None:
        a, b = heading.compared
        lines.append(
            f"Compared with {a:%d %b %Y} to {b:%d %b %Y} ({heading.comparison.replace('_', ' ')})"
        )
    lines.append(f"Made {heading.made_at:%Y-%m-%d %H:%M} UTC")
    return lines


class Workbook:
    """An XLSX file written row by row: a summary sheet (a column per metric and its
    comparison, a row per period), then the rows of figures per account, on as many
    sheets as they need."""

    def __init__(self, path: Path, heading: Heading, accounts: Mapping[UUID, Account]) -> None:
        self.book = xlsxwriter.Workbook(
            str(path), {"constant_memory": True, "strings_to_formulas": False}
        )
        self.heading, self.accounts = heading, accounts
        self.day = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self.bold = self.book.add_format({"bold": True})
        self.sheet: Any = None
        self.sheets = 0
        self.row = 0

    def summary(self, data: AnalyticsData) -> None:
        sheet = self.book.add_worksheet("Summary")
        sheet.write_string(0, 0, self.heading.title, self.bold)
        for n, line in enumerate(_describe(self.heading), start=1):
            sheet.write_string(n, 0, line)
        top = len(_describe(self.heading)) + 2
        compared = data.comparison is not None
        columns = ["period"]
        for s in data.series:
            columns += [s.metric.value] + ([f"{s.metric.value} (previous)"] if compared else [])
        for c, name in enumerate(columns):
            sheet.write_string(top, c, name, self.bold)
        periods = data.series[0].points if data.series else []
        for r, point in enumerate(periods, start=top + 1):
            sheet.write_datetime(
                r, 0, datetime.combine(point.period, datetime.min.time()), self.day
            )
            c = 1
            for s in data.series:
                for value in [s.points[r - top - 1].value] + (
                    [s.points[r - top - 1].previous] if compared else []
                ):
                    if value is not None:
                        sheet.write_number(r, c, value)
                    c += 1
        total_row = top + 1 + len(periods)
        sheet.write_string(total_row, 0, "total", self.bold)
        c = 1
        for s in data.series:
            for value in [s.total] + ([s.previous_total] if compared else []):
                if value is not None:
                    sheet.write_number(total_row, c, value, self.bold)
                c += 1
        sheet.set_column(0, 0, 14)
        sheet.set_column(1, len(columns), 16)

    def _new_sheet(self) -> None:
        self.sheets += 1
        name = "By account" if self.sheets == 1 else f"By account ({self.sheets})"
        self.sheet = self.book.add_worksheet(name)
        for c, title in enumerate(header(self.heading.comparison is not None)):
            self.sheet.write_string(0, c, title, self.bold)
        self.sheet.set_column(0, 0, 12)
        self.sheet.set_column(1, 1, 38)
        self.sheet.set_column(2, 8, 16)
        self.row = 1

    def rows(self, rows: Sequence[ExportRow], before: Mapping[date, date] | None) -> None:
        for row in rows:
            if self.sheet is None or self.row >= SHEET_ROWS:
                self._new_sheet()
            for c, cell in enumerate(_cells(row, self.accounts, before)):
                if isinstance(cell, date):
                    moment = datetime.combine(cell, datetime.min.time())
                    self.sheet.write_datetime(self.row, c, moment, self.day)
                elif isinstance(cell, float):
                    self.sheet.write_number(self.row, c, cell)
                elif isinstance(cell, str):
                    self.sheet.write_string(self.row, c, cell)
            self.row += 1

    def close(self) -> None:
        if self.sheet is None:
            self._new_sheet()
        self.book.close()


_BLUE = colors.HexColor("#1f5fbf")
_GREY = colors.HexColor("#9aa3ad")


def _latin(text: str) -> str:
    """What the PDF's standard fonts can draw (Windows-1252); anything else shows as ?."""
    return text.encode("cp1252", errors="replace").decode("cp1252")


def _chart(series: Series, granularity: str, compared: bool) -> Drawing:
    """The series drawn as a line over its periods, the comparison dashed beside it."""
    width, height = 170 * mm, 55 * mm
    drawing = Drawing(width, height)
    plot = LinePlot()
    plot.x, plot.y = int(14 * mm), int(10 * mm)
    plot.width, plot.height = int(width - 20 * mm), int(height - 18 * mm)
    points = series.points
    now = [(n, p.value) for n, p in enumerate(points) if p.value is not None]
    then = [(n, p.previous) for n, p in enumerate(points) if p.previous is not None]
    lines = [now or [(0, 0.0)]] + ([then] if compared and then else [])
    plot.data = lines
    plot.lines[0].strokeColor, plot.lines[0].strokeWidth = _BLUE, 1.6
    if len(lines) > 1:
        plot.lines[1].strokeColor, plot.lines[1].strokeWidth = _GREY, 1.2
        plot.lines[1].strokeDashArray = (3, 2)
    last = max(len(points) - 1, 1)
    step = max(1, round(last / 6))
    plot.xValueAxis.valueMin, plot.xValueAxis.valueMax = 0, last
    plot.xValueAxis.valueSteps = list(range(0, last + 1, step))
    fmt = "%d %b" if granularity != "month" else "%b %Y"

    def x_label(value: float) -> str:
        n = round(value)
        return points[n].period.strftime(fmt) if 0 <= n < len(points) else ""

    plot.xValueAxis.labelTextFormat = x_label
    plot.xValueAxis.labels.fontSize = 7
    values = [v for _, v in now + then]
    low = min([0.0, *values])
    plot.yValueAxis.valueMin = low
    plot.yValueAxis.valueMax = max([low + 1, *values])
    plot.yValueAxis.labelTextFormat = lambda v: f"{v:,.0f}"
    plot.yValueAxis.labels.fontSize = 7
    drawing.add(plot)
    if compared:
        legend = LineLegend()
        legend.x, legend.y = int(width - 70 * mm), int(height - 3 * mm)
        legend.fontSize, legend.dx, legend.dy = 7, 10, 1
        legend.columnMaximum, legend.deltax = 1, int(35 * mm)
        legend.colorNamePairs = [(_BLUE, "this period"), (_GREY, "compared period")]
        legend.alignment = "right"
        drawing.add(legend)
    return drawing


def report(
    path: Path,
    heading: Heading,
    data: AnalyticsData,
    top: TopPosts,
    accounts: Mapping[UUID, Account],
) -> None:
    """A PDF: the heading, a chart and totals per metric, and the top posts."""
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        title=_latin(heading.title),
        author="Crier",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
    )
    story: list[Any] = [Paragraph(escape(_latin(heading.title)), styles["Title"])]
    story += [Paragraph(escape(line), styles["BodyText"]) for line in _describe(heading)]
    names = sorted(
        {f"{a.name} ({a.platform})" for i, a in accounts.items() if i in data.social_account_ids}
    )
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    story += [Paragraph(escape(_latin(f"Accounts: {shown or 'none'}")), small), Spacer(1, 4 * mm)]
    compared = data.comparison is not None
    for s in data.series:
        total = f"Total {_figure(s.total)}"
        if compared:
            total += f"; compared period {_figure(s.previous_total)}; change {_change(s) or 'none'}"
        story.append(
            KeepTogether(
                [
                    Paragraph(escape(_label(s.metric.value)), styles["Heading3"]),
                    Paragraph(escape(total), small),
                    _chart(s, data.granularity.value, compared),
                ]
            )
        )
    story += [
        Spacer(1, 4 * mm),
        Paragraph(
            f"Top posts by {_label(top.metric.value)}",
            styles["Heading2"].clone("top", keepWithNext=1),
        ),
    ]
    zone = ZoneInfo(heading.timezone)
    rows: list[list[Any]] = [["#", "Published", "Where", "Post", _label(top.metric.value)]]
    for n, post in enumerate(top.data, start=1):
        where = ", ".join(sorted({t.platform for t in post.targets}))
        text = (post.text or "").strip().replace("\n", " ")
        text = text if len(text) <= 160 else text[:159] + "…"
        rows.append(
            [
                str(n),
                f"{post.published_at.astimezone(zone):%Y-%m-%d %H:%M}",
                where,
                Paragraph(escape(_latin(text)), small),
                _figure(post.value),
            ]
        )
    if len(rows) == 1:
        story.append(Paragraph("No post was published and measured in these days.", small))
    else:
        table = Table(rows, colWidths=[8 * mm, 28 * mm, 24 * mm, 94 * mm, 20 * mm], repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("FONTSIZE", (0, 0), (-1, -1), 8),
                    ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.black),
                    (
                        "ROWBACKGROUNDS",
                        (0, 1),
                        (-1, -1),
                        [colors.white, colors.HexColor("#f2f4f7")],
                    ),
                ]
            )
        )
        story.append(table)
    doc.build(story)
