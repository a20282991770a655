"""Error translation is structural: a backend lists its driver's exceptions in ``driver_errors`` and
writes no ``try``/``except`` of its own; ``Storage.__init_subclass__`` wraps its constructor and every
contract method so that those exceptions become ``StorageError`` ``from`` them."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from embedauth.clock import Clock, FrozenClock, utcnow
from embedauth.errors import EmbedAuthError, RegistrationNotFound, StorageError
from embedauth.models import Access, Permission, Registration
from embedauth.storage.base import _CONTRACT, Storage
from embedauth.storage.memory import MemoryStorage


class DriverError(Exception):
    """What the (imaginary) driver raises: a lost connection, a timeout."""


class UndeclaredError(Exception):
    """An exception the backend does not declare as its driver's."""


class Flaky(MemoryStorage):
    """memory:// whose driver fails on demand: each method raises, none catches."""

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (DriverError,)

    def __init__(self, url: str, *, clock: Clock, fail_opening: BaseException | None = None) -> None:
        if fail_opening is not None:
            raise fail_opening
        super().__init__(url, clock=clock)
        self.failure: BaseException | None = None

    def get_registration(self, client_id: str) -> Registration | None:
        if self.failure is not None:
            raise self.failure
        return super().get_registration(client_id)


class Failing:
    """A stand-in for a driver's connection: any use raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        raise self.error


@pytest.fixture
def flaky(clock: FrozenClock) -> Flaky:
    return Flaky("memory://", clock=clock)


def test_a_driver_error_becomes_storage_error_from_it(flaky: Flaky) -> None:
    assert flaky.get_registration("00000000-0000-4000-8000-000000000000") is None
    flaky.failure = DriverError("connection reset by peer")
    with pytest.raises(StorageError) as caught:
        flaky.get_registration("00000000-0000-4000-8000-000000000000")
    assert caught.value.__cause__ is flaky.failure
    assert str(caught.value) == "Flaky: DriverError: connection reset by peer"


def test_a_subclass_of_a_driver_error_is_translated(flaky: Flaky) -> None:
    class Timeout(DriverError):
        pass

    flaky.failure = Timeout("timed out")
    with pytest.raises(StorageError) as caught:
        flaky.get_registration("x")
    assert caught.value.__cause__ is flaky.failure


def test_the_constructor_is_translated(clock: FrozenClock) -> None:
    refused = DriverError("connection refused")
    with pytest.raises(StorageError) as caught:
        Flaky("memory://", clock=clock, fail_opening=refused)
    assert caught.value.__cause__ is refused
    assert str(caught.value) == "Flaky: DriverError: connection refused"


def test_inherited_contract_methods_use_the_subclass_driver_errors(flaky: Flaky) -> None:
    """``list_permissions`` is MemoryStorage's, which declares no driver errors; on Flaky it translates."""
    assert MemoryStorage.driver_errors == ()
    assert "list_permissions" not in vars(Flaky)
    lost = DriverError("server closed the connection")
    flaky._permissions = Failing(lost)  # type: ignore[assignment]
    with pytest.raises(StorageError) as caught:
        flaky.list_permissions()
    assert caught.value.__cause__ is lost


@pytest.mark.parametrize(
    "error",
    [
        RegistrationNotFound("no such registration"),
        StorageError("already translated"),
        EmbedAuthError("ours"),
    ],
    ids=["not-found", "storage-error", "root"],
)
def test_embedauth_errors_pass_through_unchanged(flaky: Flaky, error: EmbedAuthError) -> None:
    flaky.failure = error
    with pytest.raises(EmbedAuthError) as caught:
        flaky.get_registration("x")
    assert caught.value is error
    assert caught.value.__cause__ is None


def test_embedauth_errors_pass_through_even_when_the_driver_errors_cover_them(clock: FrozenClock) -> None:
    class Greedy(Flaky):
        driver_errors = (Exception,)

    greedy = Greedy("memory://", clock=clock)
    ours = RegistrationNotFound("no such registration")
    greedy.failure = ours
    with pytest.raises(RegistrationNotFound) as caught:
        greedy.get_registration("x")
    assert caught.value is ours
    greedy.failure = UndeclaredError("anything else")
    with pytest.raises(StorageError):
        greedy.get_registration("x")


@pytest.mark.parametrize(
    "error", [UndeclaredError("not the driver's"), ValueError("a bug"), KeyError("k")], ids=type
)
def test_an_error_not_in_driver_errors_is_not_translated(
    flaky: Flaky, clock: FrozenClock, error: Exception
) -> None:
    flaky.failure = error
    with pytest.raises(type(error)) as caught:
        flaky.get_registration("x")
    assert caught.value is error
    assert not isinstance(caught.value, StorageError)
    with pytest.raises(type(error)) as opening:
        Flaky("memory://", clock=clock, fail_opening=error)
    assert opening.value is error


def test_every_contract_method_is_wrapped() -> None:
    assert set(Storage.__abstractmethods__) <= set(_CONTRACT)
    assert {"close", "open_change_feed", "schema_version"} <= set(_CONTRACT)
    for cls in (MemoryStorage, Flaky):
        for name in (*_CONTRACT, "__init__"):
            if name in vars(cls):
                method = vars(cls)[name]
                assert getattr(method, "__embedauth_translated__", False), (cls.__name__, name)
                assert method.__name__ == name
    # An inherited method is not wrapped again: its one wrapper reads the instance's driver_errors.
    assert Flaky.list_permissions is MemoryStorage.list_permissions


def test_the_contract_still_works_through_the_wrappers(flaky: Flaky, clock: FrozenClock) -> None:
    permission = Permission("devices:read", "List devices", Access.READ, utcnow(clock))
    flaky.add_permission(permission)
    assert flaky.list_permissions() == [permission]
