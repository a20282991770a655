"""The management API's fixtures (``api``, ``backend_api``, ``audit``), for every test module here."""

from tests.http.test_management import api, audit, backend_api  # noqa: F401 (fixtures)
