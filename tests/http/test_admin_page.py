"""The admin page's files as :class:`~embedauth.http.admin_page.AdminPage` serves them: every file
a page loads is there, nothing refers outside this origin, and each answer carries the CSP."""

from __future__ import annotations

import re

from embedauth.config import Settings
from embedauth.http.admin_page import CONTENT_SECURITY_POLICY, AdminPage

PAGE = AdminPage(Settings())
# What the HTML and the modules load: src=/href= in the HTML, import ... from "./x.js" in JS.
_HTML_REFERENCE = re.compile(r'\b(?:src|href)="([^"#]+)"')
_JS_IMPORT = re.compile(r'\bfrom\s+"([^"]+)"')


def _references() -> set[tuple[str, str]]:
    found = set()
    for name, body in PAGE.files.items():
        text = body.decode("utf-8", errors="replace")
        pattern = _HTML_REFERENCE if name.endswith(".html") else _JS_IMPORT if name.endswith(".js") else None
        if pattern is not None:
            found |= {(name, ref) for ref in pattern.findall(text)}
    return found


def test_every_file_the_page_loads_is_served() -> None:
    references = _references()
    assert ("/index.html", "admin.js") in references and ("/admin.js", "./registrations.js") in references
    for source, ref in references:
        if ref.startswith("data:"):
            continue
        assert not re.match(r"[a-z]+:|//", ref), f"{source} loads {ref} from elsewhere"
        assert "/" + ref.removeprefix("./") in PAGE.files, f"{source} loads {ref}, which is not served"


def test_nothing_inline_that_the_policy_would_refuse() -> None:
    """The CSP allows no inline script or style: the page must not need any."""
    html = PAGE.files["/index.html"].decode()
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no onclick= handlers
    for name, body in PAGE.files.items():
        if name.endswith(".js"):
            assert b"innerHTML" not in body and b"insertAdjacentHTML" not in body, name  # text only


def test_each_answer_carries_the_policy() -> None:
    for name in PAGE.files:
        response = PAGE.handle("GET", "/admin" + name)
        assert response.status == 200
        assert response.header("Content-Security-Policy") == CONTENT_SECURITY_POLICY
        assert response.header("X-Frame-Options") == "DENY"
