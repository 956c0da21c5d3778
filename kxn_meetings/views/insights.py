"""Insights: the network's reach and what its meetings change, over a period, for organisers and their funders."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, render_template, request
from markupsafe import Markup

from .. import csvsafe
from ..forms import InsightsPeriodForm, SelectChoice
from ..models import parse_id
from ..security import organiser_required
from ..services import insights as insights_service
from ..services.insights import Insights, Period, score
from ..timefmt import short_day
from ..wording import plural

bp = Blueprint("insights", __name__)


def _period() -> tuple[InsightsPeriodForm, Period]:
    """The period asked for in the query string; the last 12 months where it asks for none or cannot be read."""
    form = InsightsPeriodForm(request.args)
    form.series.choices = [
        SelectChoice("", "All series"),
        *(SelectChoice(str(id_), name) for id_, name in insights_service.series_choices()),
    ]
    today = dt.datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()
    default = Period.last_12_months(today)
    if not form.validate():
        return form, default
    series_id = parse_id(form.series.data)
    start = form.start.data or (default.start if not form.end.data else form.end.data - (default.end - default.start))
    return form, Period(start, form.end.data or max(today, start), series_id)


@dataclass
class Charts:
    """The rows each chart draws: (label, value, what is written at the bar's end), or for the stacked chart (label,
    [(sector index, members)], total)."""

    attendance: list[tuple[str, int, str]]
    attendance_top: int
    sector_keys: list[str]
    sectors: list[tuple[str, list[tuple[int, int]], int]]
    sectors_top: int
    regions: list[tuple[str, int, str]]
    regions_top: int
    feedback: list[tuple[str, float, str]]


def _charts(insights: Insights) -> Charts:
    meetings, keys = insights.meetings, insights.sector_columns
    sectors = [
        (short_day(m.day), [(n, m.by_sector[key]) for n, key in enumerate(keys) if m.by_sector.get(key)], m.attended)
        for m in meetings
    ]
    return Charts(
        attendance=[(short_day(m.day), m.attended, f"{m.attended} of {m.going} going") for m in meetings],
        attendance_top=max((max(m.attended, m.going) for m in meetings), default=0),
        sector_keys=[key.label if key is not None else "Not said" for key in keys],
        sectors=sectors,
        sectors_top=max((sum(v for _, v in parts) for _, parts, _ in sectors), default=0),
        regions=[(r.label, r.members, str(r.members)) for r in insights.regions],
        regions_top=max((r.members for r in insights.regions), default=0),
        feedback=[
            (short_day(m.day), m.feedback_score, f"{score(m.feedback_score)} ({plural(m.feedback_answers, 'answer')})")
            for m in meetings
            if m.feedback_score is not None
        ],
    )


@dataclass(frozen=True)
class Report:
    insights: Insights
    html: Markup


# Periods whose report a process keeps at once; past this they all go, to be counted again when asked for.
REMEMBERED_PERIODS = 32


def _report(period: Period, series: list[SelectChoice]) -> Report:
    """The figures of the period and the report drawn from them, the same for every organiser: each process reuses
    them for INSIGHTS_SECONDS, since they are read in bursts (a period chosen, then its tables downloaded) and move
    only as meetings happen."""
    ttl = current_app.config["INSIGHTS_SECONDS"]
    remembered: dict[Period, tuple[float, Report]] = current_app.extensions.setdefault("kxn_insights", {})
    now = time.monotonic()
    hit = remembered.get(period)
    if ttl > 0 and hit is not None and now - hit[0] < ttl:
        return hit[1]
    insights = insights_service.figures(period)
    names = {choice.value: choice.label for choice in series}
    html = render_template(
        "insights/_report.html",
        insights=insights,
        series_name=names.get(str(period.series_id)) if period.series_id else None,
        summary=insights_service.summary_rows(insights),
        charts=_charts(insights),
        period_query={"start": period.start.isoformat(), "end": period.end.isoformat(), "series": period.series_id},
        percent=insights_service.percent,
        score=score,
    )
    report = Report(insights, Markup(html))
    if ttl > 0:
        if len(remembered) >= REMEMBERED_PERIODS:
            remembered.clear()
        remembered[period] = (now, report)
    return report


@bp.route("/insights")
@organiser_required
def page():
    form, period = _period()
    return render_template("insights/page.html", form=form, report=_report(period, form.series.choices).html)


@bp.route("/insights/<name>.csv")
@organiser_required
def download(name: str):
    if name not in insights_service.TABLES:
        abort(404)
    form, period = _period()
    rows = insights_service.export_tables(_report(period, form.series.choices).insights)[name]
    filename = f"kxn-insights-{name}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    return Response(
        csvsafe.to_csv(rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
