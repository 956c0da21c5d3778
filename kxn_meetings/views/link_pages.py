"""The page a personal link from an email opens when it names nobody: links lose their last characters when they are
copied or broken across two lines, and a member who follows one is shown the way on instead of "Page not found"."""

from __future__ import annotations

from flask import render_template, url_for


def broken_link(page_url: str, page_name: str):
    """404, with the way to the page the link belongs to (`page_url`, called `page_name`) and to signing in there.
    Nothing of the page itself is shown: the link proved nothing about who follows it."""
    page = render_template(
        "errors/broken_link.html",
        page_url=page_url,
        page_name=page_name,
        sign_in_url=url_for("auth.sign_in", next=page_url),
    )
    return page, 404
