"""Template filters and globals."""

from __future__ import annotations

from flask import Flask, current_app
from markupsafe import Markup

from . import timefmt
from .rendering import render_markdown
from .services.calendars import add_to_calendar_links


def init_app(app: Flask) -> None:
    app.add_template_filter(timefmt.iso, "iso")
    app.add_template_filter(timefmt.day, "day")
    app.add_template_filter(timefmt.short_day, "short_day")
    app.add_template_filter(timefmt.clock_in_zone, "clock_in_zone")
    app.add_template_filter(
        lambda value, zone=None: timefmt.instant(value, zone or current_app.config["TIMEZONE"]), "instant"
    )
    app.add_template_global(timefmt.when, "meeting_when")
    app.add_template_global(add_to_calendar_links, "add_to_calendar_links")
    app.add_template_filter(lambda source: Markup(render_markdown(source or "")), "markdown")

    @app.context_processor
    def network():
        return {"network_name": current_app.config["NETWORK_NAME"], "url_endpoints": current_app.view_functions}
