"""The organisers' view of every email: what waits, what went, what was set aside."""

from __future__ import annotations

import re

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for

from ..extensions import db
from ..forms import ConfirmForm
from ..mail import build_message
from ..models import Meeting, MessageKind, OutboxMessage, OutboxStatus, parse_choice, parse_id
from ..security import organiser_required
from ..services import outbox as outbox_service
from ..services.rsvps import TOKEN_SHAPE
from .paging import paginate, paginate_rows
from .transactions import transaction

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

PAGE_SIZE = 50
SENDS_PAGE_SIZE = 30

# The key of a personal answer link (/meetings/<ref>/answer/<token>): whoever holds it answers for the member.
PERSONAL_ANSWER_KEY = re.compile(rf"(/answer/){TOKEN_SHAPE.pattern}")
HIDDEN_KEY = "personal-link-hidden"
HTML_PREVIEW_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'; sandbox"
)


def _narrowed() -> outbox_service.OutboxFilter:
    return outbox_service.OutboxFilter.of(
        request.args.get("q"), request.args.get("send"), parse_id(request.args.get("meeting"))
    )


@bp.route("/")
@organiser_required
def index():
    status = parse_choice(OutboxStatus, request.args.get("status"))  # None: every message
    narrowed = _narrowed()
    page = paginate(outbox_service.messages(narrowed, status), per_page=PAGE_SIZE)
    counts = outbox_service.status_counts(narrowed)
    return render_template(
        "outbox/index.html",
        page=page,
        set_aside=counts.get(OutboxStatus.FAILED, 0),
        counts=counts,
        total=sum(counts.values()),
        status=status,
        statuses=list(OutboxStatus),
        narrowed=narrowed,
        meeting=db.session.get(Meeting, narrowed.meeting_id) if narrowed.meeting_id else None,
        filters=_filters(narrowed),
    )


def _filters(narrowed: outbox_service.OutboxFilter) -> dict[str, str]:
    """The query-string values that keep the list narrowed as it is, for tabs and pages."""
    values = {"q": narrowed.address, "send": narrowed.send_id or "", "meeting": str(narrowed.meeting_id or "")}
    return {name: value for name, value in values.items() if value}


@bp.route("/sends")
@organiser_required
def sends():
    """The messages grouped by send (an invitation round, an update, a message to those going), newest first."""
    meeting_id = parse_id(request.args.get("meeting"))
    page = paginate_rows(outbox_service.sends(meeting_id), per_page=SENDS_PAGE_SIZE)
    return render_template(
        "outbox/sends.html",
        page=page,
        meeting=db.session.get(Meeting, meeting_id) if meeting_id else None,
        kinds={kind.value: kind.label for kind in MessageKind},
        statuses=list(OutboxStatus),
    )


@bp.route("/<id:message_id>")
@organiser_required
def show(message_id: int):
    message = db.get_or_404(OutboxMessage, message_id)
    try:
        attachments = [
            (part.get_filename() or "(no name)", part.get_content_type(), len(part.get_payload(decode=True) or b""))
            for part in build_message(message).iter_attachments()
        ]
    except Exception:  # a message that cannot be built is shown anyway, with its stored error
        attachments = []
    text_body = _without_personal_links(message.text_body)
    return render_template(
        "outbox/show.html",
        message=message,
        private=message.is_private,
        attachments=attachments,
        text_body=text_body,
        links_hidden=text_body != message.text_body,
        form=ConfirmForm(),
    )


@bp.route("/<id:message_id>/html")
@organiser_required
def html(message_id: int):
    """The HTML body alone, shown in a sandboxed frame on the message page."""
    message = db.get_or_404(OutboxMessage, message_id)
    if message.is_private:
        body = "<p>This message holds a personal sign-in link, so it is not shown.</p>"
    else:
        body = _without_personal_links(message.html_body or "<p>(no HTML part)</p>")
    response = make_response(body)
    response.headers["Content-Security-Policy"] = HTML_PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _without_personal_links(body: str) -> str:
    """A message body as organisers may read it: personal answer links lose their key."""
    return PERSONAL_ANSWER_KEY.sub(rf"\g<1>{HIDDEN_KEY}", body)


@bp.route("/<id:message_id>/retry", methods=["POST"])
@organiser_required
def retry(message_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    message = db.get_or_404(OutboxMessage, message_id)
    with transaction() as outcome:
        outbox_service.retry(message)
    if not outcome.refused:
        flash(f"The message to {message.recipient} is back in the queue and will be sent again.", "success")
    return redirect(url_for("outbox.show", message_id=message_id))
