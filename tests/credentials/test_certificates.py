"""Uploaded certificates: real ones made with ``cryptography``, each refusal, and fuzzing."""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import random
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import given, settings
from hypothesis import strategies as st

from embedauth.credentials.certificates import MAX_CERTIFICATE_BYTES, ParsedCertificate, parse_certificate
from embedauth.errors import InvalidCertificate, InvalidInput

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
NOT_BEFORE = NOW - timedelta(days=1)
NOT_AFTER = NOW + timedelta(days=365)
SUBJECT = "CN=backup,O=Acme"

Key = CertificateIssuerPrivateKeyTypes | x25519.X25519PrivateKey

_CURVES: dict[str, ec.EllipticCurve] = {
    "p256": ec.SECP256R1(),
    "p384": ec.SECP384R1(),
    "p521": ec.SECP521R1(),
    "p224": ec.SECP224R1(),
    "p192": ec.SECP192R1(),
    "secp256k1": ec.SECP256K1(),
}


def _dsa_key() -> Key:
    """A DSA key: cryptography deprecates DSA (and warns), but certificates with one still exist."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        from cryptography.hazmat.primitives.asymmetric import dsa

        return dsa.generate_private_key(2048)


@functools.cache
def private_key(kind: str) -> Key:
    """Each key is generated once per test run: RSA and DSA generation is slow."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    if kind in _CURVES:
        return ec.generate_private_key(_CURVES[kind])
    generators: dict[str, Callable[[], Key]] = {
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "ed448": ed448.Ed448PrivateKey.generate,
        "x25519": x25519.X25519PrivateKey.generate,
        "dsa2048": _dsa_key,
    }
    return generators[kind]()


def make_cert(
    key: Key,
    *,
    subject: str = SUBJECT,
    not_before: datetime = NOT_BEFORE,
    not_after: datetime = NOT_AFTER,
    issuer: Key | None = None,
) -> x509.Certificate:
    """A certificate for ``key``: self-signed unless another ``issuer`` key signs it."""
    signer = issuer if issuer is not None else key
    assert not isinstance(signer, x25519.X25519PrivateKey), "an X25519 key cannot sign"
    name = x509.Name.from_rfc4514_string(subject)
    issuer_name = name if issuer is None else x509.Name.from_rfc4514_string("CN=Some CA")
    algorithm = (
        None if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey) else hashes.SHA256()
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(signer, algorithm)
    )


@functools.cache
def cert(kind: str) -> x509.Certificate:
    return make_cert(private_key(kind))


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def refused(data: bytes | str, word: str, *, now: datetime = NOW) -> str:
    """Assert that ``data`` is refused with a one-line message containing ``word``; return it."""
    with pytest.raises(InvalidCertificate) as info:
        parse_certificate(data, now=now)
    message = str(info.value)
    assert word in message
    assert "\n" not in message
    # no driver traceback chained underneath the message
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    return message


# --- accepted -----------------------------------------------------------------------------------


@pytest.mark.rfc("7515", "4.1.8")
@pytest.mark.parametrize(
    ("kind", "key_type"),
    [
        ("rsa2048", "RSA 2048"),
        ("p256", "EC P-256"),
        ("p384", "EC P-384"),
        ("p521", "EC P-521"),
        ("ed25519", "Ed25519"),
    ],
)
def test_pem_round_trip(kind: str, key_type: str) -> None:
    certificate = cert(kind)
    parsed = parse_certificate(pem(certificate), now=NOW)
    expected_thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der(certificate)).digest()).rstrip(b"=")
    assert parsed.thumbprint == expected_thumbprint.decode()
    assert len(parsed.thumbprint) == 43
    assert "=" not in parsed.thumbprint
    assert parsed.subject == SUBJECT
    assert parsed.key_type == key_type
    own_spki = (
        private_key(kind)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert parsed.public_key_pem == own_spki.decode()
    assert parsed.not_before == NOT_BEFORE
    assert parsed.not_after == NOT_AFTER
    assert parsed.not_before.utcoffset() == timedelta(0)


@pytest.mark.parametrize("kind", ["rsa2048", "p256", "ed25519"])
def test_der_gives_the_same_result_as_pem(kind: str) -> None:
    assert parse_certificate(der(cert(kind)), now=NOW) == parse_certificate(pem(cert(kind)), now=NOW)


def test_str_bytes_and_surrounding_text_give_the_same_result() -> None:
    text = pem(cert("p256")).decode()
    expected = parse_certificate(text.encode(), now=NOW)
    assert parse_certificate(text, now=NOW) == expected
    assert parse_certificate(f"\n\n  {text}  \n\n", now=NOW) == expected
    assert parse_certificate(text.replace("\n", "\r\n"), now=NOW) == expected
    # what `openssl x509 -subject` prints above the block
    assert parse_certificate(f"subject=O = Acme, CN = backup\n{text}", now=NOW) == expected


def test_issuer_is_not_judged() -> None:
    issued = make_cert(private_key("p256"), issuer=private_key("p384"))
    assert parse_certificate(pem(issued), now=NOW).key_type == "EC P-256"


def test_subject_is_rfc4514() -> None:
    certificate = make_cert(private_key("p256"), subject="CN=svc\\, prod,OU=Ops,O=Acme Ltd,C=GB")
    assert parse_certificate(pem(certificate), now=NOW).subject == "CN=svc\\, prod,OU=Ops,O=Acme Ltd,C=GB"


def test_result_is_frozen() -> None:
    parsed = parse_certificate(pem(cert("p256")), now=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.subject = "CN=other"  # type: ignore[misc]
    assert not hasattr(parsed, "__dict__")
    assert isinstance(parsed, ParsedCertificate)


def test_refusals_are_invalid_input() -> None:
    assert issubclass(InvalidCertificate, InvalidInput)
    assert issubclass(InvalidCertificate, ValueError)


# --- private keys -------------------------------------------------------------------------------

_NO = serialization.NoEncryption()
_PEM = serialization.Encoding.PEM
_DER = serialization.Encoding.DER
_PKCS8 = serialization.PrivateFormat.PKCS8
_TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL


@pytest.mark.parametrize(
    ("kind", "encoding", "fmt", "encrypted", "header"),
    [
        ("rsa2048", _PEM, _PKCS8, False, b"-----BEGIN PRIVATE KEY-----"),
        ("rsa2048", _PEM, _TRADITIONAL, False, b"-----BEGIN RSA PRIVATE KEY-----"),
        ("p256", _PEM, _TRADITIONAL, False, b"-----BEGIN EC PRIVATE KEY-----"),
        ("p256", _PEM, _PKCS8, True, b"-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        ("ed25519", _PEM, serialization.PrivateFormat.OpenSSH, False, b"-----BEGIN OPENSSH PRIVATE KEY-----"),
        ("rsa2048", _DER, _PKCS8, False, None),
        ("rsa2048", _DER, _TRADITIONAL, False, None),
        ("p256", _DER, _TRADITIONAL, False, None),
        ("ed25519", _DER, _PKCS8, False, None),
        ("p256", _DER, _PKCS8, True, None),
    ],
    ids=[
        "pkcs8-pem",
        "rsa-pem",
        "ec-pem",
        "encrypted-pkcs8-pem",
        "openssh",
        "pkcs8-der",
        "rsa-der",
        "ec-der",
        "ed25519-pkcs8-der",
        "encrypted-pkcs8-der",
    ],
)
def test_private_key_is_refused(
    kind: str,
    encoding: serialization.Encoding,
    fmt: serialization.PrivateFormat,
    encrypted: bool,
    header: bytes | None,
) -> None:
    encryption = serialization.BestAvailableEncryption(b"hunter2") if encrypted else _NO
    data = private_key(kind).private_bytes(encoding, fmt, encryption)
    if header is not None:
        assert data.startswith(header)
    message = refused(data, "private key")
    assert "never upload" in message
    assert "certificate" in message


@pytest.mark.parametrize("key_first", [False, True])
def test_certificate_and_key_bundle_is_refused(key_first: bool) -> None:
    key = private_key("p256").private_bytes(_PEM, _PKCS8, _NO)
    parts = [key, pem(cert("p256"))] if key_first else [pem(cert("p256")), key]
    refused(b"".join(parts), "private key")
    refused(b"".join(parts).decode(), "private key")


def test_two_certificates_are_refused() -> None:
    chain = pem(cert("p256")) + pem(make_cert(private_key("p384"), subject="CN=Some CA"))
    assert "2 certificates" in refused(chain, "upload one certificate")


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("rsa1024", "RSA 1024"),
        ("secp256k1", "EC secp256k1"),
        ("p224", "EC secp224r1"),
        ("p192", "EC secp192r1"),
        ("dsa2048", "DSA"),
        ("ed448", "Ed448"),
        ("x25519", "X25519"),
    ],
)
def test_weak_or_unusual_key_is_refused(kind: str, label: str) -> None:
    try:
        key = private_key(kind)
    except UnsupportedAlgorithm:
        pytest.skip(f"this cryptography/OpenSSL build cannot generate {label} keys")
    # an X25519 key cannot sign, so its certificate is issued by another key
    certificate = make_cert(key, issuer=private_key("ed25519") if kind == "x25519" else None)
    message = refused(pem(certificate), f"key is {label};")
    assert "RSA of 2048 to 8192 bits, EC P-256, P-384 or P-521, and Ed25519" in message


def test_oversized_rsa_key_is_refused() -> None:
    """A 16384-bit RSA public key (no private key needed: an EC key issues its certificate)."""
    modulus = (1 << 16383) | 0xFFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFF1
    huge = rsa.RSAPublicNumbers(65537, modulus).public_key()
    signer = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string(SUBJECT))
        .issuer_name(x509.Name.from_rfc4514_string("CN=Some CA"))
        .public_key(huge)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .sign(signer, hashes.SHA256())
    )
    refused(pem(certificate), "key is RSA 16384;")


# --- validity window ----------------------------------------------------------------------------


def test_validity_boundaries() -> None:
    data = pem(cert("p256"))
    second, micro = timedelta(seconds=1), timedelta(microseconds=1)
    assert parse_certificate(data, now=NOT_BEFORE).not_before == NOT_BEFORE
    assert parse_certificate(data, now=NOT_AFTER - micro).not_after == NOT_AFTER
    expired = refused(data, "expired", now=NOT_AFTER)
    assert f"{NOT_AFTER:%Y-%m-%d %H:%M:%S} UTC" in expired
    refused(data, "expired", now=NOT_AFTER + second)
    early = refused(data, "not valid until", now=NOT_BEFORE - micro)
    assert f"{NOT_BEFORE:%Y-%m-%d %H:%M:%S} UTC" in early


def test_expired_certificate_is_refused() -> None:
    old = make_cert(
        private_key("p256"), not_before=NOW - timedelta(days=800), not_after=NOW - timedelta(days=400)
    )
    refused(pem(old), "expired on 2025-04-27")


# --- size, emptiness, garbage -------------------------------------------------------------------


def test_size_limit_is_64_kib() -> None:
    data = pem(cert("p256"))
    at_limit = data + b"\n" * (MAX_CERTIFICATE_BYTES - len(data))
    assert len(at_limit) == 64 * 1024
    assert parse_certificate(at_limit, now=NOW).key_type == "EC P-256"
    assert parse_certificate(at_limit.decode(), now=NOW).key_type == "EC P-256"
    refused(at_limit + b"\n", "64 KiB")
    refused(at_limit.decode() + "\n", "64 KiB")
    # counted in UTF-8 bytes, not characters
    refused(data.decode() + "é" * (MAX_CERTIFICATE_BYTES // 2), "64 KiB")


def test_size_is_checked_before_anything_else() -> None:
    key = private_key("p256").private_bytes(_PEM, _PKCS8, _NO)
    refused(key + b" " * MAX_CERTIFICATE_BYTES, "64 KiB")
    refused("x" * (100 * MAX_CERTIFICATE_BYTES), "64 KiB")


@pytest.mark.parametrize("data", [b"", "", b"  \n\t", "\r\n"])
def test_empty_input_is_refused(data: bytes | str) -> None:
    refused(data, "empty")


@pytest.mark.parametrize(
    "data",
    [
        random.Random(0).randbytes(2000),
        b"hello, world",
        "just some text",
        "\ud800 a lone surrogate",
        b"\x30\x03\x02\x01\x00",  # a DER SEQUENCE that is no certificate
        b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n",
    ],
    ids=["random", "bytes", "text", "surrogate", "der-sequence", "bad-base64", "short-der", "no-end"],
)
def test_garbage_is_refused(data: bytes | str) -> None:
    refused(data, "not an X.509 certificate in PEM or DER form")


def test_public_key_alone_is_refused() -> None:
    public = (
        private_key("p256").public_key().public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    refused(public, "not an X.509 certificate")


def test_truncated_der_is_refused() -> None:
    data = der(cert("p256"))
    refused(data[:-1], "not an X.509 certificate")
    refused(data + b"\x00", "not an X.509 certificate")


# --- fuzzing ------------------------------------------------------------------------------------


def _parses_or_refuses(data: bytes | str) -> None:
    try:
        result = parse_certificate(data, now=NOW)
    except InvalidCertificate:
        return
    assert isinstance(result, ParsedCertificate)


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_only_raise_invalid_certificate(data: bytes) -> None:
    _parses_or_refuses(data)


@given(st.text(max_size=4096))
def test_arbitrary_text_only_raises_invalid_certificate(data: str) -> None:
    _parses_or_refuses(data)


# A damaged DER certificate may make cryptography *warn* (a non-positive serial number, a country
# name that is not two letters); the warning is the caller's to filter, only exceptions matter here.
ignore_damage_warnings = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning",
    "ignore:Attribute's length must be:UserWarning",
)


@ignore_damage_warnings
@settings(max_examples=300)
@given(
    st.sampled_from(["rsa2048", "p256", "ed25519"]),
    st.integers(min_value=0),
    st.integers(min_value=1, max_value=255),
)
def test_mutated_der_byte_only_raises_invalid_certificate(kind: str, position: int, flip: int) -> None:
    data = bytearray(der(cert(kind)))
    data[position % len(data)] ^= flip
    _parses_or_refuses(bytes(data))


@ignore_damage_warnings
@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_every_der_byte_mutated(kind: str) -> None:
    """Exhaustive over positions, with a few flips each: a damaged field never leaks another error."""
    original = der(cert(kind))
    for position in range(len(original)):
        for flip in (0x01, 0x80, 0xFF):
            data = bytearray(original)
            data[position] ^= flip
            _parses_or_refuses(bytes(data))


def test_negative_serial_number_is_accepted_with_cryptography_warning() -> None:
    """RFC 5280 forbids it, but legacy tools made such certificates: cryptography only warns (for now)."""
    data = bytearray(der(cert("p256")))
    serial = data.index(b"\xa0\x03\x02\x01\x02\x02") + 7  # [0] version v3, then the serial INTEGER
    data[serial] |= 0x80
    with pytest.warns(CryptographyDeprecationWarning, match="serial number"):
        assert parse_certificate(bytes(data), now=NOW).key_type == "EC P-256"
