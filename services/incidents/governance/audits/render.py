"""The audit report as HTML and as PDF.

HTML: a small template; every value from the database goes through
:func:`html.escape` (titles, findings and notes are staff input), URIs are
shown as text and never made into links, and the response carries a CSP that
allows no script.

PDF: fpdf2 (pure Python). Chinese text needs a CJK font: the first of
``REPORT_FONTS`` found on the machine is embedded (the container installs the
Debian package ``fonts-wqy-microhei``); without one the report falls back to
DejaVu Sans and, failing that, to the built-in Helvetica with characters
outside Latin-1 replaced by ``?`` (nothing is lost from the HTML report).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from services.incidents.governance.audits.schemas import AuditReport, FindingView, RemediationView

REPORT_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
)

STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #999;padding:4px 8px;text-align:left;vertical-align:top}"
    ".overdue{color:#b00020;font-weight:bold}h1{font-size:1.6em}"
)


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _rows(cells: Iterable[Iterable[object]], header: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _remediation_html(r: RemediationView) -> str:
    row_class = ' class="overdue"' if r.overdue else ""
    late = " (overdue)" if r.overdue else ""
    notes = "<br>".join(_e(f"{f.at:%Y-%m-%d} {f.status}: {f.note}") for f in r.follow_ups)
    return (
        f"<tr{row_class}><td>{_e(r.action)}</td><td>{_e(r.owner)}</td>"
        f"<td>{_e(r.due_on)}</td><td>{_e(r.status)}{late}</td><td>{notes}</td></tr>"
    )


def _finding_html(finding: FindingView) -> str:
    remediation_rows = "".join(_remediation_html(r) for r in finding.remediations)
    return (
        f"<section><h3>{_e(finding.title)} <small>[{_e(finding.rating)}; {_e(finding.status)}]</small></h3>"
        f"<p>{_e(finding.description)}</p><p><strong>Recommendation:</strong> {_e(finding.recommendation)}</p>"
        f"<p><small>source: {_e(finding.source)}</small></p>"
        "<table><thead><tr><th>remediation</th><th>owner</th><th>due</th><th>status</th><th>follow-up</th></tr>"
        f"</thead><tbody>{remediation_rows}</tbody></table></section>"
    )


def render_html(report: AuditReport) -> str:
    audit = report.audit
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Audit report: {_e(audit.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Audit report: {_e(audit.title)}</h1>",
        _rows(
            [
                ("status", audit.status),
                ("period", f"{audit.period_from} to {audit.period_to}"),
                ("scope", audit.scope),
                ("auditors", ", ".join(audit.auditors)),
                ("criteria", "; ".join(audit.criteria)),
                ("generated", f"{report.generated_at:%Y-%m-%d %H:%M} UTC (as of {report.as_of})"),
            ],
            ("", ""),
        ),
        "<h2>Conclusion</h2>",
        f"<p>{_e(audit.conclusion or 'Not yet reported.')}</p>",
        "<h2>Summary</h2>",
        _rows(
            [(rating, count) for rating, count in report.findings_by_rating.items()]
            + [("overdue remediations", report.overdue_remediations)],
            ("findings by rating", "count"),
        ),
        "<h2>Evidence</h2>",
        _rows(
            [
                (
                    e.kind,
                    e.service or "",
                    f"{e.seq_from}-{e.seq_to}" if e.seq_from is not None else "",
                    e.uri or "",
                    e.sha256 or "",
                    e.description,
                )
                for e in report.evidence
            ],
            ("kind", "service", "entries", "where", "sha256", "description"),
        ),
    ]
    if report.chains:
        parts += [
            "<h2>Audit chains (latest suite-wide verification)</h2>",
            _rows(
                [(c.service, c.status, c.first_bad_seq or "", c.verified_at or "") for c in report.chains],
                ("service", "status", "first bad entry", "verified at"),
            ),
        ]
    parts.append("<h2>Findings</h2>")
    parts += [_finding_html(f) for f in report.findings] or ["<p>No findings.</p>"]
    parts.append("</body></html>")
    return "".join(parts)


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_auto_page_break(auto=True, margin=15)
        self.latin1_only = True
        for path in REPORT_FONTS:
            if path.exists():
                self.add_font("report", fname=str(path))
                self.family = "report"
                self.latin1_only = False
                break
        else:
            self.family = "helvetica"

    def text_of(self, value: object) -> str:
        text = "" if value is None else str(value)
        if self.latin1_only:
            return text.encode("latin-1", "replace").decode("latin-1")
        return text

    def heading(self, text: str, size: int = 14) -> None:
        self.set_font(self.family, size=size)
        self.multi_cell(0, size * 0.6, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(1)

    def para(self, text: object, size: int = 10) -> None:
        self.set_font(self.family, size=size)
        self.multi_cell(0, 5, self.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render_pdf(report: AuditReport) -> bytes:
    audit = report.audit
    pdf = _Pdf()
    pdf.set_title(pdf.text_of(f"Audit report: {audit.title}"))
    pdf.add_page()
    pdf.heading(f"Audit report: {audit.title}", 16)
    pdf.para(f"Status: {audit.status}    Period: {audit.period_from} to {audit.period_to}")
    pdf.para(f"Scope: {audit.scope}")
    pdf.para(f"Auditors: {', '.join(audit.auditors)}")
    pdf.para(f"Criteria: {'; '.join(audit.criteria)}")
    pdf.para(f"Generated {report.generated_at:%Y-%m-%d %H:%M} UTC (as of {report.as_of})")
    pdf.ln(3)
    pdf.heading("Conclusion")
    pdf.para(audit.conclusion or "Not yet reported.")
    pdf.heading("Summary")
    pdf.para(", ".join(f"{rating}: {count}" for rating, count in report.findings_by_rating.items()))
    pdf.para(f"Overdue remediations: {report.overdue_remediations}")
    pdf.heading("Evidence")
    for e in report.evidence or []:
        entries = f" entries {e.seq_from}-{e.seq_to}" if e.seq_from is not None else ""
        where = f" at {e.uri}" if e.uri else ""
        digest = f" sha256 {e.sha256}" if e.sha256 else ""
        pdf.para(f"- [{e.kind}] {e.service or ''}{entries}{where}{digest}: {e.description}")
    if report.chains:
        pdf.heading("Audit chains (latest suite-wide verification)")
        for c in report.chains:
            bad = f", first bad entry {c.first_bad_seq}" if c.first_bad_seq else ""
            pdf.para(f"- {c.service}: {c.status}{bad}")
    pdf.heading("Findings")
    if not report.findings:
        pdf.para("No findings.")
    for finding in report.findings:
        pdf.heading(f"{finding.title} [{finding.rating}; {finding.status}]", 12)
        pdf.para(finding.description)
        pdf.para(f"Recommendation: {finding.recommendation}")
        for r in finding.remediations:
            late = " (OVERDUE)" if r.overdue else ""
            pdf.para(f"  Remediation: {r.action}; owner {r.owner}; due {r.due_on}; {r.status}{late}")
            for f in r.follow_ups:
                pdf.para(f"    {f.at:%Y-%m-%d} {f.status}: {f.note}", 9)
    return bytes(pdf.output())
