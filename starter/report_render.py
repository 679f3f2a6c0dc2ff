"""The promises report as CSV (one row per promise and split, for a return) and as a page.

The page is self-contained: the charts are matplotlib SVG inline (no JavaScript, no
network), the figures are tables a screen reader can read, and each figure cell carries
``data-promise``/``data-figure`` so a test can read the page's numbers back.
"""

from __future__ import annotations

import csv
import io
from html import escape

from domain.compliance import ComplianceReport, PromiseFigures

CSV_COLUMNS = (
    "split",
    "value",
    "name",
    "due",
    "met_on_time",
    "met_late",
    "missed",
    "open",
    "on_time_rate",
    "median_seconds_to_meet",
    "p90_seconds_to_meet",
)
FIGURES = CSV_COLUMNS[3:]


def _blank(value: object) -> object:
    return "" if value is None else value


def render_csv(report: ComplianceReport) -> str:
    """One row per promise overall (split ``all``), then per promise and split value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    groups = [("all", "all", report.promises)] + [
        (s.by, s.value, s.promises) for s in report.splits
    ]
    for split, value, promises in groups:
        for p in promises:
            writer.writerow([split, value, p.name, *(_blank(getattr(p, f)) for f in FIGURES)])
    return out.getvalue()


_WORDS = {"crn": "CRN", "right6": "Right 6", "vps": "VPS", "imu": "IMU"}


def _label(name: str) -> str:
    """A deadline name as words: crn_or_explanation -> CRN or explanation."""
    words = [_WORDS.get(w, w) for w in name.split("_")]
    return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _svg(fig: object) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})  # type: ignore[attr-defined]
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _charts(report: ComplianceReport) -> tuple[str, str]:
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    mpl.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable
    mpl.rcParams["svg.hashsalt"] = "whn-report"  # the same report renders the same page

    decided = [p for p in report.promises if p.on_time_rate is not None]
    fig = Figure(figsize=(8, 0.45 * max(len(decided), 1) + 1.2))
    ax = fig.add_subplot()
    names = [_label(p.name) for p in decided][::-1]
    rates = [100 * (p.on_time_rate or 0) for p in decided][::-1]
    bars = ax.barh(names, rates, color="#1d70b8")
    ax.bar_label(bars, labels=[f"{r:.1f}%" for r in rates], padding=3)
    ax.set_xlim(0, 110)
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("met on time, of those decided")
    ax.spines[["top", "right"]].set_visible(False)
    rate_svg = _svg(fig)

    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    for p in decided:
        weeks = [w for w in report.weekly if w.name == p.name and w.on_time_rate is not None]
        if weeks:
            ax.plot(
                [w.week for w in weeks],
                [100 * (w.on_time_rate or 0) for w in weeks],
                marker="o",
                label=_label(p.name),
            )
    ax.set_ylim(0, 105)
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_ylabel("met on time")
    ax.set_xlabel("week of receipt (Monday)")
    ax.spines[["top", "right"]].set_visible(False)
    if decided:
        ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    fig.autofmt_xdate()
    trend_svg = _svg(fig)
    return rate_svg, trend_svg


def _table(promises: list[PromiseFigures], caption: str, key: str) -> str:
    head = "".join(
        f"<th scope='col'>{h}</th>"
        for h in (
            "Promise",
            "Due",
            "Met on time",
            "Met late",
            "Missed",
            "Still open",
            "On time",
            "Median time to meet",
            "90% met within",
        )
    )
    rows = []
    for p in promises:
        rate = f"{p.on_time_rate:.1%}" if p.on_time_rate is not None else "-"
        cells = [
            (f, str(getattr(p, f))) for f in ("due", "met_on_time", "met_late", "missed", "open")
        ] + [
            ("on_time_rate", rate),
            ("median_seconds_to_meet", _duration(p.median_seconds_to_meet)),
            ("p90_seconds_to_meet", _duration(p.p90_seconds_to_meet)),
        ]
        raw = {
            "on_time_rate": p.on_time_rate,
            "median_seconds_to_meet": p.median_seconds_to_meet,
            "p90_seconds_to_meet": p.p90_seconds_to_meet,
        }
        tds = "".join(
            f"<td data-promise='{escape(p.name)}' data-figure='{f}'"
            + (f" data-value='{_blank(raw[f])}'" if f in raw else "")
            + f">{escape(text)}</td>"
            for f, text in cells
        )
        rows.append(f"<tr><th scope='row'>{escape(_label(p.name))}</th>{tds}</tr>")
    return (
        f"<table data-split='{escape(key)}'><caption>{escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_STYLE = """
body { font-family: Arial, sans-serif; margin: 2rem auto; max-width: 70rem; color: #0b0c0c;
       line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 2rem; margin-bottom: .2rem; } .lede { font-size: 1.2rem; color: #505a5f; }
table { border-collapse: collapse; margin: 1rem 0 2rem; width: 100%; }
caption { text-align: left; font-weight: bold; font-size: 1.1rem; padding: .4rem 0; }
th, td { border-bottom: 1px solid #b1b4b6; padding: .4rem .6rem; text-align: right; }
th[scope=row], th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 2rem; } figure { margin: 0; }
figcaption { font-weight: bold; margin-bottom: .4rem; } svg { max-width: 100%; height: auto; }
.note { color: #505a5f; font-size: .9rem; }
"""


def render_html(report: ComplianceReport) -> str:
    """A page a person reads: the headline figures, two charts, and the tables."""
    rate_svg, trend_svg = _charts(report)
    period = f"{report.from_:%d %B %Y} to {report.to:%d %B %Y}"
    team = f" for team {escape(report.team)}" if report.team else ""
    tables = [_table(report.promises, "Every promise", "all")]
    for split in report.splits:
        tables.append(
            _table(
                split.promises,
                f"{split.by.replace('_', ' ').capitalize()}: {split.value}",
                f"{split.by}={split.value}",
            )
        )
    return f"""<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>How we kept our promises: {period}</title><style>{_STYLE}</style></head>
<body><main>
<h1>How we kept our promises</h1>
<p class="lede">{report.cases} report(s) received {period}{team}.
Figures as of {report.as_of:%d %B %Y %H:%M} UTC.</p>
<div class="charts">
<figure role="img" aria-label="On-time rate per promise"><figcaption>On time, per promise</figcaption>{rate_svg}</figure>
<figure role="img" aria-label="On-time rate per week of receipt"><figcaption>On time, week by week</figcaption>{trend_svg}</figure>
</div>
{"".join(tables)}
<p class="note">On time: met by its due time, out of those met or missed (promises still
open are not counted). Missed: its due time passed before it was met; a missed promise
met afterwards counts as met late. Time to meet: from the promise being made to it being
kept.</p>
</main></body></html>
"""
