"""Logging in through the pages, as a browser does (the CSRF field of the form), with an
HTTP client or in a real browser page."""

from __future__ import annotations

import re

from tests.conftest import PASSWORD


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )


def log_in(page, url: str, username: str, password: str = PASSWORD) -> None:
    """Log in through the login page of a real browser ``page``; waits for the home page."""
    page.goto(f"{url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/")


def blur(page) -> None:
    """Nothing focused, so keys go to the page's shortcuts."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
