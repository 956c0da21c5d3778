"""The accessibility audit every browser test relies on: it passes a sound page and names each serious problem of
an unsound one, with where it is."""

from __future__ import annotations

import pytest

from .browser_fixtures import assert_accessible

pytestmark = pytest.mark.browser

SOUND = """<!doctype html><html lang="en"><head><title>Meetings</title></head><body>
<main><h1>Meetings</h1><img src="data:," alt="The network's logo"><button type="button">Answer</button></main>
</body></html>"""
UNSOUND = """<!doctype html><html lang="en"><head><title>Meetings</title></head><body>
<main><h1>Meetings</h1><img id="logo" src="data:,"><button id="answer" type="button"></button>
<p id="going" style="color:#bbb;background:#fff">Going</p></main></body></html>"""


def test_a_sound_page_passes(page):
    page.set_content(SOUND)
    assert_accessible(page)


def test_each_serious_problem_is_named_with_its_element(page):
    page.set_content(UNSOUND)
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_accessible(page)
    report = str(failure.value)
    assert "image-alt (critical)" in report and "#logo" in report
    assert "button-name (critical)" in report and "#answer" in report
    assert "color-contrast (serious)" in report and "#going" in report
