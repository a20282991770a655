"""The built-in storage schemes: a plugin on every manager, like any third party's would be.

Backends are imported when first opened, so a driver is needed only for the schemes in use.
"""

from __future__ import annotations

from collections.abc import Mapping

from embedauth.clock import Clock
from embedauth.errors import ConfigurationError
from embedauth.hooks import hookimpl
from embedauth.storage.base import Storage, StorageFactory

SQL_SCHEMES = (
    "sqlite",
    "sqlite+pysqlite",
    "postgresql",
    "postgres",
    "postgresql+psycopg",
    "mysql",
    "mysql+pymysql",
    "mariadb",
    "mariadb+pymysql",
)


def _memory(url: str, clock: Clock, timeout: float) -> Storage:
    from embedauth.storage.memory import MemoryStorage

    return MemoryStorage(url, clock=clock, timeout=timeout)


def _sql(url: str, clock: Clock, timeout: float) -> Storage:
    from embedauth.storage.sql import SQLStorage

    return SQLStorage(url, clock=clock, timeout=timeout)


def _redis(url: str, clock: Clock, timeout: float) -> Storage:
    try:
        from embedauth.storage.redis import RedisStorage
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"{url.partition(':')[0]}:// storage needs: pip install 'embedauth[redis]'"
        ) from exc
    return RedisStorage(url, clock=clock, timeout=timeout)


@hookimpl
def embedauth_storage_schemes() -> Mapping[str, StorageFactory]:
    return {"memory": _memory, "redis": _redis, "rediss": _redis} | dict.fromkeys(SQL_SCHEMES, _sql)
