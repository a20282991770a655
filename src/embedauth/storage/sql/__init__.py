"""SQL storage (SQLite, PostgreSQL, MariaDB/MySQL), split by concern: :mod:`.schema` (the tables and
migrations), :mod:`.rows` (rows to models), :mod:`.engine` (drivers and session settings),
:mod:`.postgres_feed` (the LISTEN/NOTIFY change feed) and :mod:`.storage` (the contract over them).
"""

from embedauth.storage.sql.storage import SQLStorage

__all__ = ["SQLStorage"]
