"""Several instances of one deployment: four processes starting at once on one PostgreSQL (or Redis)
store agree on one signing key, and each verifies the others' tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from embedauth import EmbedAuth
from tests.conftest import TEST_SETTINGS
from tests.integration.conftest import REPO, child_env
from tests.services import storage_url

#: Each process waits for the same instant, then gets a token and prints it with its key id.
PROCESS = """
import json, sys, time
from embedauth import EmbedAuth
url, start, client_id, secret = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
auth = EmbedAuth(url, issuer="https://api.example.com")
time.sleep(max(0.0, start - time.time()))
token = auth.tokens.client_credentials(client_id, secret).access_token
print(json.dumps({"token": token, "kids": [k.kid for k in auth.keys.published()]}))
"""


@pytest.mark.parametrize(
    "backend",
    [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("redis", marks=pytest.mark.redis)],
)
def test_four_processes_starting_at_once_share_one_signing_key(backend: str, tmp_path: object) -> None:
    with storage_url(backend, tmp_path) as url:  # type: ignore[arg-type]
        settings = TEST_SETTINGS | {"issuer": "https://api.example.com"}
        with EmbedAuth(url, **settings) as auth:
            made = auth.registrations.create(tenant="site-1", name="Job")
            assert auth.storage.list_signing_keys() == []  # nobody has signed yet
            env = child_env(EMBEDAUTH_KEY_ENCRYPTION_KEY=settings["key_encryption_key"])
            start = time.time() + 2.0  # every process imported and connected by then
            processes = [
                subprocess.Popen(
                    [sys.executable, "-c", PROCESS, url, str(start), made.client_id, made.client_secret],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                    cwd=REPO,
                )
                for _ in range(4)
            ]
            results = []
            for process in processes:
                out, err = process.communicate(timeout=60)
                assert process.returncode == 0, err
                results.append(json.loads(out))
            [key] = auth.storage.list_signing_keys()
            for result in results:
                assert result["kids"] == [key.kid]
                assert auth.verify(result["token"]).client_id == made.client_id
