"""Fault tests: embedauth against servers of its own that the tests kill, hang, stop and restore.

The machinery is in :mod:`tests.faults.servers`; the fixtures in ``tests/faults/conftest.py``.
"""
