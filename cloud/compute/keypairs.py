"""Key pairs: a user's public keys, by name, for injection into the servers they boot.

Key pairs belong to a user, not to a project. The views resolve whose key pairs a request is about
(the caller's, or another user's for an admin) and pass that user's id here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from cloud import errors
from cloud.compute import quotas
from cloud.identity.context import RequestContext
from cloud.identity.models import User

from .models import KeyPair

SSH, X509 = "ssh", "x509"
TYPES = (SSH, X509)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.@")
_GENERATED_COMMENT = "Generated-by-Kumo"


def validate_name(name: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise errors.BadRequest(
            "Keypair data is invalid: Keypair name must be string and between 1 and 255 "
            "characters long"
        )
    if not name.strip():
        raise errors.BadRequest("Keypair data is invalid: Keypair name cannot be whitespace only")
    if not set(name) <= _NAME_CHARS:
        raise errors.BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")


def _colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def ssh_fingerprint(public_key: str) -> str:
    """MD5 of the key blob in colon-separated hex (what `ssh-keygen -l -E md5` prints); 400 for
    anything that is not an OpenSSH public key."""
    # cryptography is imported where a key pair is made or read, not with the module: its Rust
    # bindings cost 7-9 MiB in every process that imports servers (web, conductor, scheduler),
    # and a boot never touches them.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_ssh_public_key(public_key.strip().encode())
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        raise errors.BadRequest(
            "Keypair data is invalid: failed to generate fingerprint"
        ) from None
    # Re-serialised rather than split from the input, so the blob is the key's canonical one.
    blob = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    raw = base64.b64decode(blob.split()[1])
    return _colon_hex(hashlib.md5(raw, usedforsecurity=False).digest())


def x509_fingerprint(certificate: str) -> str:
    """SHA-1 of the DER certificate in colon hex; 400 for anything that is not a PEM certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    try:
        cert = x509.load_pem_x509_certificate(certificate.strip().encode())
    except (ValueError, UnicodeEncodeError):
        raise errors.BadRequest(
            "Keypair data is invalid: failed to generate X509 fingerprint"
        ) from None
    # SHA-1 names the certificate here (as Nova does); it signs nothing.
    return _colon_hex(cert.fingerprint(hashes.SHA1()))


def generate_ssh_keypair() -> tuple[str, str]:
    """A fresh RSA 2048 key: (OpenSSH public key, PEM private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return f"{public} {_GENERATED_COMMENT}", private_pem


# Microsoft's User Principal Name, the subjectAltName otherName a WinRM client certificate carries.
_UPN_OID = "1.3.6.1.4.1.311.20.2.3"
_X509_VALIDITY = datetime.timedelta(days=3650)


def generate_x509_keypair(user_id: str) -> tuple[str, str]:
    """A fresh self-signed client certificate for the user, as Nova's generate_winrm_x509_cert
    makes one (RSA 2048, CN=<user id>, clientAuth, UPN <user id>@localhost, ten years):
    (PEM certificate, PEM private key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id)])
    upn = f"{user_id}@localhost".encode()
    upn_der = bytes([0x0C, len(upn)]) + upn  # a DER UTF8String (a user id is short)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _X509_VALIDITY)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.OtherName(ObjectIdentifier(_UPN_OID), upn_der)]),
                       critical=False)
        .sign(private, hashes.SHA256())
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), private_pem


def create_keypair(
    ctx: RequestContext,
    user_id: str,
    name: str,
    *,
    public_key: str | None = None,
    key_type: str = SSH,
) -> tuple[KeyPair, str | None]:
    """Import `public_key`, or generate one of `key_type` when none is given (an ssh key, or an
    x509 certificate as Nova made them before 2.92). Returns the key pair and the private key (only
    when generated: it is never stored). The caller's project's key_pairs quota is checked against
    `user_id`'s key pairs."""
    validate_name(name)
    if key_type not in TYPES:
        raise errors.BadRequest(f"Keypair data is invalid: unknown key type {key_type}")
    private_key = None
    if public_key is None and key_type == X509:
        public_key, private_key = generate_x509_keypair(user_id)
    elif public_key is None:
        public_key, private_key = generate_ssh_keypair()
    public_key = public_key.strip()
    fingerprint = ssh_fingerprint(public_key) if key_type == SSH else x509_fingerprint(public_key)
    if not User.objects.filter(pk=user_id).exists():
        raise errors.BadRequest(f"User {user_id} could not be found.")
    try:
        with transaction.atomic():
            quotas.reserve(ctx.project_id, {"key_pairs": 1}, user_id=user_id)
            if KeyPair.objects.filter(user_id=user_id, name=name).exists():
                raise errors.Conflict(f"Key pair '{name}' already exists.")
            keypair = KeyPair.objects.create(
                user_id=user_id,
                name=name,
                public_key=public_key,
                fingerprint=fingerprint,
                type=key_type,
            )
    except IntegrityError:
        # The unique constraint still guards a race the user lock could not see (no user row).
        raise errors.Conflict(f"Key pair '{name}' already exists.") from None
    return keypair, private_key


def keypairs_of(user_id: str) -> QuerySet[KeyPair]:
    return KeyPair.objects.filter(user_id=user_id)


def list_keypairs(
    user_id: str, *, limit: int | None = None, marker: str | None = None
) -> list[KeyPair]:
    """The user's key pairs in creation order; `marker` is the name of the last one already seen."""
    qs = keypairs_of(user_id).order_by("id")
    if marker is not None:
        last = keypairs_of(user_id).filter(name=marker).first()
        if last is None:
            raise errors.BadRequest(f"marker [{marker}] not found")
        qs = qs.filter(id__gt=last.id)
    if limit is not None:
        qs = qs[:limit]
    return list(qs)


def get_keypair(user_id: str, name: str) -> KeyPair:
    keypair = keypairs_of(user_id).filter(name=name).first()
    if keypair is None:
        raise errors.NotFound(f"Keypair {name} not found for user {user_id}")
    return keypair


def delete_keypair(user_id: str, name: str) -> None:
    deleted, _ = keypairs_of(user_id).filter(name=name).delete()
    if not deleted:
        raise errors.NotFound(f"Keypair {name} not found for user {user_id}")


def key_for_server(ctx: RequestContext, key_name: str | None) -> KeyPair | None:
    """The caller's key pair a server boots with; 400 when the caller has none of that name."""
    if key_name is None:
        return None
    keypair = keypairs_of(ctx.user_id).filter(name=key_name).first()
    if keypair is None:
        raise errors.BadRequest("Invalid key_name provided.")
    return keypair
