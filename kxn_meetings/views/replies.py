"""Calendar replies: the organisers' list, and the endpoint an inbound-mail service posts raw messages to."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from ..extensions import csrf
from ..models import CalendarReply, ReplyOutcome, parse_choice
from ..security import organiser_required
from ..services import replies as reply_service
from .paging import tabbed_page
from .transactions import transaction

bp = Blueprint("replies", __name__, url_prefix="/replies")

# The tabs besides All: ?show=<outcome>, with the tab's name.
TABS = {ReplyOutcome.UNMATCHED: "Unmatched", ReplyOutcome.COUNTER: "New times proposed"}
PARTSTAT_LABELS = {
    "ACCEPTED": "Accepted",
    "TENTATIVE": "Tentative",
    "DECLINED": "Declined",
    "NEEDS-ACTION": "No answer",
    "DELEGATED": "Delegated",
}


@bp.route("/")
@organiser_required
def index():
    tab = parse_choice(ReplyOutcome, request.args.get("show"))
    if tab not in TABS:
        tab = None
    query = (
        select(CalendarReply)
        .options(joinedload(CalendarReply.meeting), joinedload(CalendarReply.member))
        .order_by(CalendarReply.received_at.desc(), CalendarReply.id.desc())
    )
    page, counts = tabbed_page(query, CalendarReply.outcome, tab, per_page=50)
    return render_template(
        "replies/index.html",
        page=page,
        tab=tab,
        tabs=TABS,
        counts=counts,
        unmatched=counts.get(ReplyOutcome.UNMATCHED, 0),
        partstats=PARTSTAT_LABELS,
    )


def _plain(text: str, status: int, **headers: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain", headers=headers)


@bp.route("/inbound", methods=["POST"])
@csrf.exempt
def inbound():
    """A raw RFC 822 message from an inbound-mail service, authenticated by a shared secret."""
    secret = current_app.config["REPLIES_INBOUND_SECRET"]
    if not secret:
        return _plain("Not found: the inbound endpoint is not enabled.", 404)
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), str(secret).encode()):
        return _plain("Unauthorised: send Authorization: Bearer <secret>.", 401, **{"WWW-Authenticate": "Bearer"})
    declared = request.content_length
    if declared is not None and (refusal := reply_service.too_large(declared)):
        return _plain(refusal, 413)
    raw = request.stream.read(current_app.config["REPLIES_MAX_BYTES"] + 1)
    if refusal := reply_service.too_large(len(raw), at_least=True):
        return _plain(refusal, 413)
    if not raw.strip():
        return _plain("Bad request: the body is empty; post the raw message (RFC 822).", 400)
    if not _has_headers(raw):
        return _plain("Bad request: the body is not an email message (no header lines); post the raw message.", 400)
    try:
        with transaction(show=False) as outcome:
            processed = reply_service.process(raw)
    except SQLAlchemyError:
        current_app.logger.exception("calendar reply could not be stored")
        return _plain("The message could not be stored just now; please try again later.", 503, **{"Retry-After": "60"})
    if outcome.error is not None:
        return _plain(outcome.error.message, 422)
    reply = processed.reply
    return jsonify(outcome=reply.outcome.value, reason=reply.reason, duplicate=processed.duplicate)


def _has_headers(raw: bytes) -> bool:
    """At least one `Name: value` line before the first blank line, as in every email message."""
    head = raw.lstrip(b"\r\n").split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    for line in head.splitlines():
        name, colon, _ = line.partition(b":")
        if colon and name and all(33 <= c <= 126 for c in name):
            return True
    return False
