"""What the growth, memory and reach harnesses share: throw-away namespaces on the real servers,
registrations written straight into storage, interleaved-round statistics and the Markdown table.

**Namespaces.** Every run gets its own PostgreSQL schema, MariaDB database or Redis key prefix
(random, ``embedauth_bench_…``), removed afterwards even when the run fails, as ``tests/services.py``
does for the tests (the server URLs are the tests' ``EMBEDAUTH_TEST_*_URL`` variables, same defaults).

**Seeding straight into storage.** :func:`seed_registrations` writes exactly the rows (SQL) or keys
(Redis) that the backend's own ``create_registration`` writes, in bulk: the rows come from the
backend's own row mapping (:mod:`embedauth.storage.sql.rows`) and the Redis document from
:meth:`RedisStorage._registration_doc` of one template registration, with the per-client values
substituted. PostgreSQL is loaded with ``COPY``, SQLite and MariaDB with ``executemany``, Redis
with pipelines, the memory backend through ``create_registration`` itself. Hashing a million
secrets would take minutes, so every registration stores the one precomputed argon2id hash of one
shared secret, except the *working set*: the clients a benchmark will authenticate each get a
secret of their own and its hash. They must: the verified-secret cache is keyed by the secret
alone (an HMAC of it) with the owner inside the entry, so one secret shared by many clients would
hold one entry and every request for another client would cost an argon2 run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import argon2
from tests.services import MYSQL_URL, POSTGRES_URL, REDIS_URL, _with_query

from embedauth.credentials.secrets import generate_client_secret, hint, new_id
from embedauth.models import CustomerScope, CustomerScopeKind, Registration, SecretCredential
from embedauth.storage.base import Storage

#: The argon2id cost every harness runs at: far below the default (t=2, 19 MiB), so that seeding and
#: warming thousands of clients takes seconds. Stated in every harness's output.
ARGON2: dict[str, Any] = {"argon2_time_cost": 1, "argon2_memory_kib": 256, "argon2_parallelism": 1}
ARGON2_TEXT = "argon2id t=1 m=256 KiB p=1 (bench setting; the default is t=2 m=19456 KiB)"
SCOPE = "bench:read"
TENANT = "bench"


@contextlib.contextmanager
def namespace(backend: str, workdir: Path) -> Iterator[str]:
    """A storage URL for ``backend`` in a namespace of its own, removed afterwards."""
    tag = f"embedauth_bench_{secrets.token_hex(6)}"
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        path = workdir / f"{tag}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for leftover in workdir.glob(f"{tag}*"):
                leftover.unlink()
    elif backend in ("postgres", "mysql"):
        import sqlalchemy

        base_url = POSTGRES_URL if backend == "postgres" else MYSQL_URL
        admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT")
        create, drop = (
            (f'CREATE SCHEMA "{tag}"', f'DROP SCHEMA "{tag}" CASCADE')
            if backend == "postgres"
            else (f"CREATE DATABASE `{tag}`", f"DROP DATABASE `{tag}`")
        )
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(create))
        try:
            if backend == "postgres":
                yield _with_query(base_url, f"options=-csearch_path%3D{tag}")
            else:
                head, _, query = base_url.partition("?")
                yield head.rsplit("/", 1)[0] + "/" + tag + ("?" + query if query else "")
        finally:
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(drop))
            admin.dispose()
    elif backend == "redis":
        import redis

        try:
            yield _with_query(REDIS_URL, f"prefix={tag}")
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{tag}*", count=10_000):
                batch.append(key)
                if len(batch) >= 10_000:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
            client.close()
    else:
        raise ValueError(f"unknown backend {backend!r}")


def redis_used_memory() -> int:
    """The Redis server's ``used_memory`` (bytes)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


# ---------------------------------------------------------------------------- seeding


def _hasher() -> argon2.PasswordHasher:
    """The hasher SecretHasher builds at :data:`ARGON2` (so no stored hash is 'weaker' and re-hashed)."""
    return argon2.PasswordHasher(
        time_cost=ARGON2["argon2_time_cost"],
        memory_cost=ARGON2["argon2_memory_kib"],
        parallelism=ARGON2["argon2_parallelism"],
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


@dataclasses.dataclass(frozen=True)
class Seeded:
    """What :func:`seed_registrations` wrote: how many, how long, and the working set's secrets."""

    count: int
    seconds: float
    working: list[tuple[str, str]]  # (client_id, client_secret), drawn at random from the seeded


def _template(now: datetime) -> Registration:
    return Registration(
        client_id="00000000-0000-4000-8000-000000000000",
        tenant=TENANT,
        name="seeded",
        description="",
        scopes=(SCOPE,),
        customer_scope=CustomerScope(CustomerScopeKind.ALL, ()),
        enabled=True,
        created_at=now,
        updated_at=now,
        secrets=(
            SecretCredential(
                id="TEMPLATE-SECRET-ID",
                hint="eas_TPL",
                secret_hash="TEMPLATE-HASH",
                created_at=now,
                expires_at=now + timedelta(days=365),
            ),
        ),
    )


def seed_registrations(
    storage: Storage, count: int, *, working: int, seed: int = 1, chunk: int = 20_000
) -> Seeded:
    """Write ``count`` enabled registrations of tenant ``bench`` holding ``bench:read`` (which must
    be in the catalog) straight into ``storage``; ``working`` of them, drawn at random, get secrets
    of their own, returned. The others share one secret's hash."""
    from embedauth.storage.memory import MemoryStorage
    from embedauth.storage.redis import RedisStorage
    from embedauth.storage.sql.storage import SQLStorage

    started = time.perf_counter()
    rng = random.Random(seed)
    hasher = _hasher()
    shared = generate_client_secret()
    shared_hint, shared_hash = hint(shared), hasher.hash(shared)
    chosen = set(rng.sample(range(count), min(working, count)))
    own: dict[int, tuple[str, str]] = {}
    for index in chosen:
        secret = generate_client_secret()
        own[index] = (secret, hasher.hash(secret))
    now = datetime.now(UTC).replace(microsecond=0)
    template = _template(now)
    work: list[tuple[str, str]] = []

    def rows() -> Iterator[tuple[str, str, str, str]]:
        for index in range(count):
            client_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            mine = own.get(index)
            if mine is None:
                yield client_id, new_id(), shared_hint, shared_hash
            else:
                work.append((client_id, mine[0]))
                yield client_id, new_id(), hint(mine[0]), mine[1]

    if isinstance(storage, MemoryStorage):
        for client_id, credential_id, secret_hint, secret_hash in rows():
            credential = dataclasses.replace(
                template.secrets[0], id=credential_id, hint=secret_hint, secret_hash=secret_hash
            )
            storage.create_registration(
                dataclasses.replace(template, client_id=client_id, secrets=(credential,))
            )
    elif isinstance(storage, SQLStorage):
        _seed_sql(storage, template, rows(), chunk)
    elif isinstance(storage, RedisStorage):
        _seed_redis(storage, template, rows(), count, chunk)
    else:
        raise TypeError(f"cannot seed {type(storage).__name__}")
    # In seeding order, which is random: the working set is drawn at random from the seeded set.
    rng.shuffle(work)
    return Seeded(count, time.perf_counter() - started, work)


def _chunks(
    items: Iterator[tuple[str, str, str, str]], size: int
) -> Iterator[list[tuple[str, str, str, str]]]:
    batch: list[tuple[str, str, str, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _seed_sql(
    storage: Any, template: Registration, clients: Iterator[tuple[str, str, str, str]], chunk: int
) -> None:
    """The rows ``SQLStorage.create_registration`` writes: the registration, its scope, its secret."""
    from sqlalchemy import insert, text

    from embedauth.storage.sql import rows
    from embedauth.storage.sql.schema import REGISTRATIONS, SCOPES, SECRETS

    registration = rows.registration_row(template)
    children = rows.children_rows(template)
    scope, secret = children[SCOPES][0], children[SECRETS][0]
    engine = storage._engine
    tables = (REGISTRATIONS, SCOPES, SECRETS)
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            pg = raw.driver_connection
            with pg.cursor() as cursor:
                for batch in _chunks(clients, chunk):
                    for table, template_row, key in (
                        (REGISTRATIONS, registration, None),
                        (SCOPES, scope, None),
                        (SECRETS, secret, "secret"),
                    ):
                        columns = list(template_row)
                        names = ", ".join(f'"{c}"' for c in columns)
                        with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                            for client_id, credential_id, secret_hint, secret_hash in batch:
                                values = dict(template_row, client_id=client_id)
                                if key is not None:
                                    values.update(id=credential_id, hint=secret_hint, secret_hash=secret_hash)
                                copy.write_row([values[c] for c in columns])
            pg.commit()
            with pg.cursor() as cursor:  # fresh statistics, so the planner sees the table's real size
                for table in tables:
                    cursor.execute(f"ANALYZE {table.name}")
            pg.commit()
        finally:
            raw.close()
        return
    with engine.begin() as conn:
        for batch in _chunks(clients, chunk):
            conn.execute(insert(REGISTRATIONS), [dict(registration, client_id=c[0]) for c in batch])
            conn.execute(insert(SCOPES), [dict(scope, client_id=c[0]) for c in batch])
            conn.execute(
                insert(SECRETS),
                [dict(secret, client_id=c, id=i, hint=h, secret_hash=s) for c, i, h, s in batch],
            )
        if engine.dialect.name == "sqlite":
            conn.execute(text("ANALYZE"))


def _seed_redis(
    storage: Any,
    template: Registration,
    clients: Iterator[tuple[str, str, str, str]],
    count: int,
    chunk: int,
) -> None:
    """The keys ``RedisStorage.create_registration`` writes: the registration hash (``doc`` and
    ``version``; no ``used`` field, never used), both indexes, and the scope's holder count."""
    client = storage._redis
    doc = storage._registration_doc(template)
    secret = template.secrets[0]

    def quoted(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)[1:-1]

    for placeholder in (template.client_id, secret.id, secret.hint, secret.secret_hash):
        if doc.count(quoted(placeholder)) != 1:
            raise AssertionError(f"template placeholder {placeholder!r} is not unique in the document")
    score = int(template.created_at.timestamp() * 1000)
    tenant_index = storage._tenant_key(template.tenant)
    all_index = storage._all_registrations
    for batch in _chunks(clients, chunk):
        pipe = client.pipeline(transaction=False)
        for client_id, credential_id, secret_hint, secret_hash in batch:
            mine = (
                doc.replace(quoted(template.client_id), quoted(client_id))
                .replace(quoted(secret.id), quoted(credential_id))
                .replace(quoted(secret.hint), quoted(secret_hint))
                .replace(quoted(secret.secret_hash), quoted(secret_hash))
            )
            pipe.hset(
                storage._registration_key(client_id), mapping={"doc": mine, "version": template.version}
            )
        pipe.zadd(tenant_index, {c[0]: score for c in batch})
        pipe.zadd(all_index, {c[0]: score for c in batch})
        pipe.execute()
    client.hincrby(storage._holders, SCOPE, count)


# ---------------------------------------------------------------------------- figures and tables


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by nearest rank (p99 of 30 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def yes(met: bool) -> str:
    return "yes" if met else "no"


def write_json(path: str | None, figures: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
