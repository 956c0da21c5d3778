"""Insights: the network's reach and what its meetings change, for organisers."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("insights", __name__)
