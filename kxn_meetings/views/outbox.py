"""The organisers' view of every email: what waits, what went, what was set aside."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..forms import ConfirmForm
from ..mail import build_message
from ..models import OutboxMessage, OutboxStatus
from ..security import require_organiser
from ..services import outbox as outbox_service

bp = Blueprint("outbox", __name__, url_prefix="/outbox")
bp.before_request(require_organiser)


@bp.route("/")
def index():
    status = request.args.get("status", "")
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status in {s.value for s in OutboxStatus}:
        query = query.where(OutboxMessage.status == status)
    page = db.paginate(query, per_page=50, error_out=False)
    counts = dict(db.session.execute(
        select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(OutboxMessage.status)).all())
    return render_template("outbox/index.html", page=page, counts=counts, status=status, form=ConfirmForm())


@bp.route("/<int:message_id>")
def show(message_id: int):
    message = db.get_or_404(OutboxMessage, message_id)
    attachments = [(a.filename, a.content_type, len(a.data)) for a in build_message(message).attachments]
    return render_template("outbox/show.html", message=message, attachments=attachments, form=ConfirmForm())


@bp.route("/<int:message_id>/html")
def html(message_id: int):
    """The HTML body alone, shown in a sandboxed frame on the message page."""
    message = db.get_or_404(OutboxMessage, message_id)
    response = make_response(message.html_body or "<p>(no HTML part)</p>")
    response.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.route("/<int:message_id>/retry", methods=["POST"])
def retry(message_id: int):
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    message = db.get_or_404(OutboxMessage, message_id)
    if message.status != OutboxStatus.FAILED:
        flash("Only a message that was set aside can be retried.", "error")
    else:
        outbox_service.retry(message)
        db.session.commit()
        flash(f"Message to {message.recipient} is back in the queue.", "success")
    return redirect(url_for("outbox.show", message_id=message_id))
