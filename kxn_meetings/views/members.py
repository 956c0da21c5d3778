"""Members: the organisers' directory, and each member's own profile."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

bp = Blueprint("members", __name__)


@bp.route("/profile")
@login_required
def profile():
    return render_template("members/profile.html", member=current_user)
