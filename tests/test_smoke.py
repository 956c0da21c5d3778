import re


def test_home_renders(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"No meetings are scheduled yet" in response.data


def test_every_page_links_the_site_icon(client):
    page = client.get("/").get_data(as_text=True)
    for rel, kind in (("icon", "image/svg+xml"), ("apple-touch-icon", "image/png")):
        href = re.search(rf'<link rel="{rel}" href="([^"]+)"', page).group(1)
        with client.get(href) as response:
            assert response.status_code == 200 and response.mimetype == kind, (rel, href)
