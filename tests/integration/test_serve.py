"""``embedauth serve`` as users run it: the demo API, a pause from the command reaching the running
server within a second, middleware-only verification in another process, and ``make run``'s recipe."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from embedauth.adapters.starlette import BearerMiddleware, requires_scopes
from embedauth.remote import RemoteVerifier
from tests.integration.conftest import FRAMEWORKS, REPO, Client, Served, child_env, free_port, run_cli, stop

REVOCATION_DEADLINE = 1.0  # DESIGN.md: a change reaches every process within a second
POLL_EVERY = 0.02


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge_params(response: httpx.Response) -> dict[str, str]:
    """The auth-params of a ``Bearer`` challenge (RFC 6750 §3)."""
    challenge = response.headers["WWW-Authenticate"]
    scheme, _, params = challenge.partition(" ")
    assert scheme == "Bearer", challenge
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', params))


def until_refused(check: Callable[[], bool], what: str) -> float:
    """Seconds until ``check()`` is False, polled every 20 ms; fails past the deadline."""
    start = time.monotonic()
    while check():
        elapsed = time.monotonic() - start
        assert elapsed < REVOCATION_DEADLINE, f"{what} still accepted after {elapsed:.3f} s"
        time.sleep(POLL_EVERY)
    return time.monotonic() - start


# ---------------------------------------------------------------------------- the demo API


def test_demo_api(served: Served) -> None:
    reader = served.register("devices:read")
    writer = served.register("devices:write", tenant="site-2")
    with httpx.Client() as http:
        public = http.get(served.url("/demo/public"))
        assert public.status_code == 200 and public.headers["content-type"].startswith("application/json")

        whoami = http.get(served.url("/demo/whoami"), headers=bearer(served.token(reader)))
        assert whoami.status_code == 200, whoami.text
        body = whoami.json()
        assert body["client_id"] == reader.client_id and body["subject"] == reader.client_id
        assert body["tenant"] == "site-1" and body["scopes"] == ["devices:read"]
        assert body["customer_scope"] == "all" and body["expires_at"] > time.time()

        devices = http.get(served.url("/demo/devices"), headers=bearer(served.token(reader)))
        assert devices.status_code == 200
        assert [d["id"] for d in devices.json()["devices"]] == ["dev-1", "dev-2", "dev-3"]

        # Any valid token will do for whoami, but devices needs devices:read (RFC 6750 §3.1).
        writer_token = served.token(writer)
        assert http.get(served.url("/demo/whoami"), headers=bearer(writer_token)).json()["tenant"] == "site-2"
        refused = http.get(served.url("/demo/devices"), headers=bearer(writer_token))
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_scope"
        params = challenge_params(refused)
        assert params["error"] == "insufficient_scope" and params["realm"] == served.base_url

        # No token: 401 with the bare challenge (§3.1: no error code when no credentials were sent).
        anonymous = http.get(served.url("/demo/whoami"))
        assert anonymous.status_code == 401
        assert challenge_params(anonymous) == {"realm": served.base_url}

        garbled = http.get(served.url("/demo/whoami"), headers=bearer(writer_token[:-4] + "AAAA"))
        assert garbled.status_code == 401 and challenge_params(garbled)["error"] == "invalid_token"


def test_disable_from_the_command_reaches_the_server_within_a_second(served: Served) -> None:
    by_command, in_process, other = (served.register("devices:read") for _ in range(3))
    tokens = {client.client_id: served.token(client) for client in (by_command, in_process, other)}
    with httpx.Client() as http:

        def accepted(client: Client) -> bool:
            headers = bearer(tokens[client.client_id])
            return http.get(served.url("/demo/whoami"), headers=headers).status_code == 200

        assert accepted(by_command) and accepted(in_process)  # verified once: in the token cache

        # As an admin would: the command, in another process. Timed from when it has exited (the
        # change committed); its own start-up is not the server's latency.
        disabled = served.cli("registrations", "disable", by_command.client_id)
        assert disabled["client_id"] == by_command.client_id and disabled["enabled"] is False
        after_command = until_refused(lambda: accepted(by_command), "the token of a registration disabled")

        # The same change timed from its commit exactly: the library call returns once it is stored.
        served.auth.registrations.disable(in_process.client_id)
        after_commit = until_refused(lambda: accepted(in_process), "the token of a registration disabled")

        refused = http.get(served.url("/demo/whoami"), headers=bearer(tokens[by_command.client_id]))
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        assert challenge_params(refused)["error"] == "invalid_token"
        # Its secret no longer gets tokens either; another registration is untouched.
        denied = http.post(
            served.token_url,
            data={"grant_type": "client_credentials"},
            auth=(by_command.client_id, by_command.client_secret),
        )
        assert denied.status_code == 401 and denied.json()["error"] == "invalid_client", denied.text
        assert accepted(other)
    print(f"refused {after_command:.3f} s after the command, {after_commit:.3f} s after the commit")
    assert after_command < REVOCATION_DEADLINE and after_commit < REVOCATION_DEADLINE


# ---------------------------------------------------------------------------- middleware-only mode


@pytest.fixture
def remote(served: Served) -> Iterator[RemoteVerifier]:
    """A verifier that knows only the served issuer's URL and follows its storage's revocations."""
    verifier = RemoteVerifier(served.base_url, revocation_storage=served.storage_url)
    try:
        yield verifier
    finally:
        verifier.close()


def devices_api(verifier: RemoteVerifier) -> BearerMiddleware:
    """Another service's API: a Starlette app behind the bearer middleware, issuing nothing."""

    @requires_scopes("devices:read")
    async def devices(request: Request) -> Response:
        principal = request.user.principal
        return JSONResponse({"client_id": principal.client_id, "tenant": principal.tenant})

    return BearerMiddleware(
        Starlette(routes=[Route("/devices", devices)]), verifier=verifier, realm="devices"
    )


def get(app: ASGIApp, path: str, token: str | None = None) -> httpx.Response:
    """``GET path`` on ``app`` in process (httpx's ASGI transport: Starlette's TestClient wants httpx2)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://devices.test") as client:
            return await client.get(path, headers=None if token is None else bearer(token))

    return anyio.run(send)


def test_remote_verifier_and_middleware(served: Served, remote: RemoteVerifier) -> None:
    reader = served.register("devices:read")
    writer = served.register("devices:write")
    token = served.token(reader)

    principal = remote.verify(token)
    assert principal.client_id == reader.client_id and principal.tenant == "site-1"
    assert set(principal.scopes) == {"devices:read"}

    api = devices_api(remote)
    ok = get(api, "/devices", token)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"client_id": reader.client_id, "tenant": "site-1"}
    assert get(api, "/devices").status_code == 401
    forbidden = get(api, "/devices", served.token(writer))
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "insufficient_scope"
    params = challenge_params(forbidden)
    assert (params["realm"], params["error"], params.get("scope")) == (
        "devices",
        "insufficient_scope",
        "devices:read",
    )

    # A pause reaches this process too, through the issuer's storage; timed from its commit.
    served.auth.registrations.disable(reader.client_id)

    def accepted() -> bool:
        return get(api, "/devices", token).status_code == 200

    elapsed = until_refused(accepted, "the disabled registration's token (remote)")
    print(f"refused {elapsed:.3f} s after the change")  # shown with -s or -rP
    assert elapsed < REVOCATION_DEADLINE


# ---------------------------------------------------------------------------- make run


def run_recipe() -> list[str]:
    """The recipe lines of the Makefile's ``run`` target."""
    text = (REPO / "Makefile").read_text()
    match = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert match is not None, "the Makefile has no run target"
    return [line.strip() for line in match.group(1).splitlines()]


def printed_commands(recipe: list[str]) -> list[str]:
    """The numbered commands ``make run`` echoes for the user to try, in order."""
    numbered = [re.fullmatch(r'@echo "\s*(\d+)\. (.*)"', line) for line in recipe]
    commands = {int(m.group(1)): m.group(2) for m in numbered if m is not None}
    assert sorted(commands) == [1, 2, 3], recipe
    return [commands[n] for n in (1, 2, 3)]


def embedauth_args(command: str, storage_url: str) -> list[str]:
    """The arguments of a Makefile ``$(BIN)/embedauth ...`` command, ``$(STORAGE)`` filled in."""
    argv = shlex.split(command)
    assert argv[0] == "$(BIN)/embedauth", command
    return [storage_url if arg == "$(STORAGE)" else arg for arg in argv[1:]]


def curl(command: str, base_url: str, **values: str) -> httpx.Response:
    """The ``curl -s [-u U:P] [-d DATA]... [-H HEADER]... URL`` of a printed command, sent with httpx."""
    for placeholder, value in values.items():
        command = command.replace(placeholder, value)
    argv = shlex.split(command)
    assert argv[0] == "curl", command
    auth: tuple[str, str] | None = None
    data: list[str] = []
    headers: dict[str, str] = {}
    url = None
    options = iter(argv[1:])
    for option in options:
        if option == "-s":
            continue
        if option == "-u":
            user, _, password = next(options).partition(":")
            auth = (user, password)
        elif option == "-d":
            data.append(next(options))
        elif option == "-H":
            name, _, value = next(options).partition(":")
            headers[name.strip()] = value.strip()
        elif option.startswith("http://127.0.0.1:8000/"):
            url = base_url + option.removeprefix("http://127.0.0.1:8000")
        else:
            raise AssertionError(f"unexpected curl argument {option!r} in {command!r}")
    assert url is not None, command
    if not data:
        return httpx.get(url, headers=headers, auth=auth)
    # curl -d: a POST of the pieces joined with &, as application/x-www-form-urlencoded.
    headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    return httpx.post(url, content="&".join(data).encode(), headers=headers, auth=auth)


def field(text: str, label: str) -> str:
    match = re.search(rf"^{re.escape(label)}:\s+(\S+)$", text, re.MULTILINE)
    assert match is not None, f"no {label!r} line in:\n{text}"
    return match.group(1)


def test_make_run_recipe(served: Served) -> None:
    recipe = run_recipe()
    # Its setup lines (the permissions, --if-missing) succeed again on a store that has them.
    setup = [line.lstrip("@").partition(" > ")[0] for line in recipe if " permissions add " in line]
    assert len(setup) == 2, recipe
    for command in setup:
        done = run_cli(*embedauth_args(command, served.storage_url))
        assert done.returncode == 0, done.stderr

    create, get_token, whoami = printed_commands(recipe)
    # 1. As printed: no --storage, so the default store (EMBEDAUTH_STORAGE here) and text output.
    done = run_cli(
        *embedauth_args(create, served.storage_url), env=child_env(EMBEDAUTH_STORAGE=served.storage_url)
    )
    assert done.returncode == 0, done.stderr
    client_id, client_secret = field(done.stdout, "Client ID"), field(done.stdout, "Client secret")
    assert "shown only once" in done.stdout

    # 2. The token request.
    issued = curl(get_token, served.base_url, CLIENT_ID=client_id, CLIENT_SECRET=client_secret)
    assert issued.status_code == 200, issued.text
    assert issued.headers["Cache-Control"] == "no-store"
    token = issued.json()
    assert token["token_type"] == "Bearer" and token["scope"] == "devices:read"

    # 3. whoami.
    me = curl(whoami, served.base_url, ACCESS_TOKEN=token["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == client_id and me.json()["tenant"] == "site-1"
    assert me.json()["scopes"] == ["devices:read"]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_serve_without_the_demo_stops_cleanly_on_ctrl_c(tmp_path: Path, framework: str) -> None:
    """``serve --no-demo`` is the token service alone; Ctrl-C (SIGINT) ends it with status 0, one
    line saying where it served, and no traceback."""
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "embedauth.cli",
                "--storage",
                f"sqlite:///{tmp_path / 'e.db'}",
                "serve",
                "--port",
                str(port),
                "--framework",
                framework,
                "--no-demo",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=child_env(),
            cwd=REPO,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 15
            with httpx.Client(timeout=2) as http:
                while True:
                    try:
                        if http.get(base + "/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
                    time.sleep(0.05)
                assert http.get(base + "/demo/public").status_code == 404
                assert http.get(base + "/.well-known/jwks.json").status_code == 200
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            stop(process)
    output = log_path.read_text()
    assert "Traceback" not in output
    assert output.count(f"serving on http://127.0.0.1:{port}") == 1
