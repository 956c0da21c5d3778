"""Signing in the way a member does it: a browser, a real SMTP server, the link or the code from the email."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from kxn_meetings.extensions import db
from kxn_meetings.services import auth as auth_service

from .browser_fixtures import audit, visit

pytestmark = [pytest.mark.browser, pytest.mark.app_config(OUTBOX_DELIVER_AFTER_COMMIT=True)]


def _request_link(page, smtp_server, email: str) -> str:
    """From the home page, ask for a sign-in email; return its plain-text body."""
    visit(page, "/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    audit(page)
    page.get_by_label("Email address").first.fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    audit(page)
    message = smtp_server.wait_for(1)[0]
    assert email in str(message["To"])
    return message.get_body(preferencelist=("plain",)).get_content()


def test_sign_in_with_the_emailed_link_works_once(live_server, smtp_server, page, member):
    body = _request_link(page, smtp_server, member.email)
    link = re.search(r"http://\S+/sign-in/link/\S+", body).group(0)
    assert link.startswith(live_server.url + "/")

    visit(page, link)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sign in")
    page.get_by_role("main").get_by_role("button", name="Sign in").click()

    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=member.name)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {member.name}")
    audit(page)

    visit(page, link, status=410)
    expect(page.get_by_role("heading", level=1)).to_contain_text("no longer valid")


def test_sign_in_with_the_emailed_code(live_server, smtp_server, page, member):
    body = _request_link(page, smtp_server, member.email)
    code = re.search(r"\b(\d{6})\b", body).group(1)

    page.get_by_label("Six-digit code").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    audit(page)

    page.get_by_label("Six-digit code").fill(code)
    page.get_by_role("button", name="Sign in", exact=True).click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name=member.name)).to_be_visible()
    audit(page)

    nav.get_by_role("button", name="Sign out").click()
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    audit(page)


def test_organiser_password_pages_and_error_pages(live_server, page, organiser):
    auth_service.set_password(organiser, "correct horse battery staple")
    db.session.commit()

    visit(page, "/sign-in")
    page.get_by_text("Organisers: sign in with a password").click()
    form = page.locator("details form")
    form.get_by_label("Email address").fill(organiser.email)
    form.get_by_label("Password").fill("not the password")
    form.get_by_role("button", name="Sign in with password").click()
    expect(page.get_by_role("alert")).to_contain_text("That email address and password do not match")
    audit(page)

    form.get_by_label("Password").fill("correct horse battery staple")
    form.get_by_role("button", name="Sign in with password").click()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name=organiser.name)).to_be_visible()

    visit(page, "/account/password")
    page.get_by_label("New password").fill("too short")
    page.get_by_label("Repeat the password").fill("too short")
    page.get_by_role("button", name="Save password").click()
    expect(page.get_by_role("alert")).to_contain_text("Use at least 12 characters")
    audit(page)
    page.get_by_role("alert").get_by_role("link", name="Use at least 12 characters").click()
    expect(page.get_by_label("New password")).to_be_focused()

    visit(page, "/no-such-page", status=404)
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
