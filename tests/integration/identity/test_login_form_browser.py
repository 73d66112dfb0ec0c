"""The login form in headless Chromium (Debian's /usr/bin/chromium through Playwright) against a
real identity process: a browser, not a test client, decides whether what the login pages send
(their Content-Security-Policy above all) lets a login reach the portal.

Chromium applies CSP ``form-action`` to every redirect that follows a form's submission, so a
login page with ``form-action 'self'`` had its 302 to the portal blocked after a good login.
The portal here redirects again from its callback, to another origin, as portals may: that hop
belongs to the same navigation and must not be blocked either.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from egov_clients.identity import MachineKey
from identity_process import ADMIN_ID, PASSWORD, RunningIdentity, next_totp, setup_citizen

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
CLIENT_ID = "browser-portal"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
]


@dataclass
class Portal:
    """A portal's callback on 127.0.0.1 that redirects to its home page on ``localhost`` (a
    different origin), which answers "signed in"."""

    port: int
    callbacks: list[dict[str, list[str]]] = field(default_factory=list)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/cb"

    @property
    def home(self) -> str:
        return f"http://localhost:{self.port}/home"


@pytest.fixture(scope="module")
def portal() -> Iterator[Portal]:
    found = Portal(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/cb":
                found.callbacks.append(urllib.parse.parse_qs(url.query))
                self.send_response(302)
                self.send_header("Location", found.home)
                self.end_headers()
                return
            body = b"signed in"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # listening from here on
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_a_login_in_chromium_reaches_the_portal_and_its_own_redirect(
        identity: RunningIdentity, admin_key: MachineKey, portal: Portal,
        browser: Any) -> None:
    username, secret = setup_citizen(identity, admin_key, index=0)
    admin = identity.client.client_credentials_token(ADMIN_ID, admin_key, "identity:admin")
    identity.client.register_client(admin, client_id=CLIENT_ID, client_name="Browser Portal",
                                    grant_types=["authorization_code"], scopes=["openid"],
                                    redirect_uris=[portal.redirect_uri])
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    state = secrets.token_urlsafe(12)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": portal.redirect_uri,
        "scope": "openid", "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256", "acr_values": "urn:egov:aal:2"})
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        page.goto(f"{identity.issuer}/authorize?{query}")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=totp_code]", next_totp(secret))
        page.click("button[type=submit]")
        page.wait_for_url(portal.home, timeout=15_000)
        assert page.inner_text("body") == "signed in"
    finally:
        context.close()
    assert not [text for text in console if "Content Security Policy" in text], console
    [callback] = portal.callbacks
    assert callback["state"] == [state] and callback["iss"] == [identity.issuer]
    tokens = httpx.post(f"{identity.issuer}/token", data={
        "grant_type": "authorization_code", "client_id": CLIENT_ID,
        "code": callback["code"][0], "redirect_uri": portal.redirect_uri,
        "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
