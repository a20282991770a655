"""Every sample of the README and the docs runs as written, in a fresh virtualenv that has only the
extras its page names: what a newcomer copying it would have.

The project is built into a wheel once; each set of extras gets one venv for the session. A driver
script runs in that venv: it executes the sample's text, then exercises what the sample built (an
app gets a token from its own token endpoint and calls its protected route) with nothing but the
standard library and what the venv holds. Samples that talk to a server (the remote verifier, the
client assertion) are given a real one, served from the test's own environment; the only edits
are the example URLs, replaced by the real ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, Served, child_env
from tests.services import redis_prefix

pytestmark = pytest.mark.samples

INSTALL_TIMEOUT = 600


def block(page: Path, section: str | None = None, language: str = "python", index: int = 0) -> str:
    """The ``index``-th fenced block of ``language`` on ``page`` (within a snippet section, if named)."""
    text = page.read_text()
    if section is not None:
        text = text.split(f"[start:{section}] -->", 1)[1].split(f"[end:{section}]", 1)[0]
    found: list[str] = re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
    return found[index]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    [built] = out.glob("embedauth-*.whl")
    return built


class Venvs:
    """One fresh virtualenv per install line, made on first use."""

    def __init__(self, root: Path, wheel: Path) -> None:
        self.root, self.wheel = root, wheel
        self.made: dict[str, Path] = {}

    def python(self, extras: str = "", *also: str) -> Path:
        key = ",".join([extras, *also])
        if key not in self.made:
            home = self.root / (re.sub(r"\W", "_", key) or "core")
            venv.EnvBuilder(with_pip=True).create(home)
            requirement = f"{self.wheel}[{extras}]" if extras else str(self.wheel)
            subprocess.run(
                [home / "bin" / "python", "-m", "pip", "install", "--quiet", requirement, *also],
                check=True,
                timeout=INSTALL_TIMEOUT,
                env={k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}},
            )
            self.made[key] = Path(home / "bin" / "python")
        return self.made[key]


@pytest.fixture(scope="session")
def venvs(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venvs:
    return Venvs(tmp_path_factory.mktemp("venvs"), wheel)


def run(python: Path, driver: str, cwd: Path, sample: str | None = None, **env: str) -> str:
    """Run ``driver`` in the venv, in ``cwd``, where ``sample`` is the module ``sample.py`` (the
    driver imports it, as a user's code would be); its stdout. The caller's settings are not passed."""
    if sample is not None:
        (cwd / "sample.py").write_text(sample)
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(driver)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=child_env(**env) | {"PYTHONPATH": ""},
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    return tmp_path


README = REPO / "README.md"
DOCS = REPO / "docs"

#: Gets a token from the app's own token endpoint with a client created in its catalog, then calls
#: the protected /devices route: with the right scope, without a token, with the wrong scope.
EXERCISE = """
    auth = namespace["auth"]
    auth.permissions.add("devices:read")
    auth.permissions.add("devices:write", access="write")
    reader = auth.registrations.create(tenant="site-1", name="r", scopes=["devices:read"])
    writer = auth.registrations.create(tenant="site-1", name="w", scopes=["devices:write"])
    def token(made):
        form = {"grant_type": "client_credentials", "client_id": made.client_id, "client_secret": made.client_secret}
        status, body = send("POST", "/oauth/token", form=form)
        assert status == 200, body
        return body["access_token"]
    assert send("GET", "/devices", bearer=token(reader))[0] == 200
    assert send("GET", "/devices")[0] == 401
    assert send("GET", "/devices", bearer=token(writer))[0] == 403
    print("ok")
"""


def test_the_python_api_sample(venvs: Venvs, sample_dir: Path) -> None:
    sample = block(README, "python-api")
    out = run(
        venvs.python(),
        """
        import sample
        assert sample.principal.scopes == {"devices:read"}
        print("ok")
        """,
        sample_dir,
        sample,
    )
    assert out.strip() == "ok"


def test_the_fastapi_quickstart(venvs: Venvs, sample_dir: Path) -> None:
    sample = block(README, "fastapi")
    driver = f"""
        import json, socket, threading, time, urllib.error, urllib.parse, urllib.request
        import uvicorn
        import sample
        namespace = vars(sample)
        sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
        server = uvicorn.Server(uvicorn.Config(namespace["app"], host="127.0.0.1", port=port, log_level="error"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.02)
        def send(method, path, form=None, bearer=None):
            data = urllib.parse.urlencode(form).encode() if form else None
            request = urllib.request.Request(f"http://127.0.0.1:{{port}}{{path}}", data=data, method=method)
            if bearer:
                request.add_header("Authorization", f"Bearer {{bearer}}")
            try:
                with urllib.request.urlopen(request) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())
        {textwrap.indent(textwrap.dedent(EXERCISE), "        ").strip()}
        server.should_exit = True
        """
    assert run(venvs.python("fastapi"), driver, sample_dir, sample).strip() == "ok"


def test_the_flask_quickstart(venvs: Venvs, sample_dir: Path) -> None:
    sample = block(README, "flask")
    driver = f"""
        import sample
        namespace = vars(sample)
        client = namespace["app"].test_client()
        def send(method, path, form=None, bearer=None):
            headers = {{"Authorization": f"Bearer {{bearer}}"}} if bearer else {{}}
            response = client.open(path, method=method, data=form, headers=headers)
            return response.status_code, response.get_json()
        {textwrap.indent(textwrap.dedent(EXERCISE), "        ").strip()}
        """
    assert run(venvs.python("flask"), driver, sample_dir, sample).strip() == "ok"


def test_the_hooks_sample(venvs: Venvs, sample_dir: Path) -> None:
    sample = block(DOCS / "hooks.md")
    driver = """
        import sample
        auth, alerts = sample.auth, sample.alerts
        from embedauth import InvalidToken
        try:
            auth.verify("not-a-token")
        except InvalidToken:
            pass
        assert alerts.refusals == [(None, "not three base64url segments")], alerts.refusals
        made = auth.registrations.create(tenant="t", name="n")
        token = auth.tokens.client_credentials(made.client_id, made.client_secret).access_token
        assert auth.verify(token).claims["region"] == "eu-west-1"
        print("ok")
        """
    assert run(venvs.python(), driver, sample_dir, sample).strip() == "ok"


def test_the_admin_scope_sample(venvs: Venvs, sample_dir: Path) -> None:
    sample = block(DOCS / "management-api.md", "python")
    driver = """
        import sample
        assert [r.name for r in sample.page.items] == ["Backup script"]
        assert sample.bob.registrations.list().total == 0
        assert sample.auth.registrations.get(sample.made.client_id).enabled  # bob changed nothing
        print("ok")
        """
    assert run(venvs.python(), driver, sample_dir, sample).strip().endswith("ok")


def test_the_admin_theme_sample(venvs: Venvs, sample_dir: Path) -> None:
    """docs/admin-page.md: the product's name and colours reach the page."""
    sample = block(DOCS / "admin-page.md", "theme")
    driver = """
        import asyncio
        import httpx
        import sample
        async def main():
            transport = httpx.ASGITransport(app=sample.app)
            async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as client:
                assert (await client.get("/admin/config.json")).json()["product_name"] == "Acme Cloud"
                css = (await client.get("/admin/theme.css")).text
                assert "--accent:#0f766e;" in css and "--header:#134e4a;" in css, css
                assert (await client.get("/admin/")).status_code == 200
        asyncio.run(main())
        print("ok")
        """
    assert run(venvs.python("fastapi", "httpx"), driver, sample_dir, sample).strip() == "ok"  # starlette too


def test_the_apps_sample(venvs: Venvs, sample_dir: Path) -> None:
    """docs/apps.md: a developer's app, site-1 connects it without devices:write, then pauses it."""
    sample = block(DOCS / "apps.md", "python")
    driver = """
        import sample
        [link] = sample.dana.apps.connections(sample.app.app_id)
        assert link.connection.tenant == "site-1" and link.registration.scopes == ("devices:read",)
        assert link.registration.enabled is False
        print("ok")
        """
    assert run(venvs.python(), driver, sample_dir, sample).strip().endswith("ok")


def test_the_admin_guard_sample(venvs: Venvs, sample_dir: Path) -> None:
    """The FastAPI app with its own guard: who the header names is the admin, nobody else is."""
    sample = block(DOCS / "management-api.md", "guard")
    driver = """
        import asyncio, json
        import httpx
        import sample
        async def main():
            transport = httpx.ASGITransport(app=sample.app)
            async with httpx.AsyncClient(transport=transport, base_url="https://api.example.com") as client:
                assert (await client.get("/admin/api/session")).status_code == 401
                me = await client.get("/admin/api/session", headers={"x-signed-in-user": "alice"})
                assert me.json() == {"admin": "alice", "tenants": ["site-1"], "manages_catalog": False}, me.text
                config = (await client.get("/admin/config.json")).json()
                assert config["sign_in"] == "app" and config["sign_in_url"] == "/login", config
        asyncio.run(main())
        print("ok")
        """
    assert run(venvs.python("fastapi", "httpx"), driver, sample_dir, sample).strip() == "ok"


def _issue(served: Served) -> tuple[str, str]:
    """A client of the served issuer and an access token of it."""
    client = served.register("devices:read")
    return client.client_id, served.token(client)


@pytest.mark.redis
@pytest.mark.parametrize("served", ["starlette"], indirect=True)  # the sample is the client's side
def test_the_remote_verifier_sample(venvs: Venvs, sample_dir: Path, served: Served) -> None:
    _, access_token = _issue(served)
    with redis_prefix() as redis_url:
        sample = (
            block(README, "python-api", index=1)
            .replace("https://auth.example.com", served.base_url)
            .replace("redis://cache:6379/0", redis_url)
        )
        driver = f"""
            import builtins
            builtins.access_token = {access_token!r}  # the sample's free name: the token to verify
            import sample
            print(sample.verifier.verify({access_token!r}).client_id)
            """
        out = run(venvs.python("redis"), driver, sample_dir, sample)
    assert out.strip() == served.auth.verify(access_token).client_id


@pytest.mark.parametrize("served", ["starlette"], indirect=True)  # the samples are the client's side
def test_the_client_assertion_samples(venvs: Venvs, sample_dir: Path, served: Served) -> None:
    """The certificate recipe (with the command of a fresh install), then the Python function and
    the curl-and-openssl recipe, each getting a token with that certificate."""
    client = served.register("devices:read")
    token_url = served.token_url
    shell_env = {
        "PATH": f"{venvs.python().parent}:{os.environ['PATH']}",  # the fresh install's embedauth
        "CLIENT_ID": client.client_id,
        "TOKEN_URL": token_url,
        "EMBEDAUTH_STORAGE": served.storage_url,
    }
    for recipe in (block(DOCS / "client-assertions.md", language="bash"),):
        done = subprocess.run(
            ["bash", "-ec", recipe],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=sample_dir,
            env=shell_env,
        )
        assert done.returncode == 0, done.stderr
    assert served.auth.registrations.get(client.client_id).certificates
    python_sample = block(DOCS / "client-assertions.md", "python")
    driver = f"""
        import sample
        answer = sample.token_with_assertion({token_url!r}, {client.client_id!r}, open("client.key", "rb").read())
        assert answer["token_type"] == "Bearer", answer
        print("ok")
        """
    assert run(venvs.python("", "httpx"), driver, sample_dir, python_sample).strip() == "ok"
    shell = block(DOCS / "client-assertions.md", "shell", language="bash")
    done = subprocess.run(
        ["bash", "-ec", shell],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=sample_dir,
        env=shell_env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["token_type"] == "Bearer" and served.auth.verify(answer["access_token"])


def test_every_sample_is_run() -> None:
    """A new fenced sample on these pages needs a test here."""
    counted = {
        README: len(re.findall(r"```python\n", README.read_text())),
        DOCS / "hooks.md": len(re.findall(r"```python\n", (DOCS / "hooks.md").read_text())),
        DOCS / "client-assertions.md": len(
            re.findall(r"```(?:python|bash)\n", (DOCS / "client-assertions.md").read_text())
        ),
    }
    assert counted == {README: 4, DOCS / "hooks.md": 1, DOCS / "client-assertions.md": 3}
    # Run in-process, by the tests of what they show: tests/registry/test_lifecycle.py and test_audit.py.
    in_process = {
        page: len(re.findall(r"```python\n", (DOCS / page).read_text()))
        for page in ("lifecycle.md", "audit.md")
    }
    assert in_process == {"lifecycle.md": 1, "audit.md": 1}
