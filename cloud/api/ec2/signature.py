"""Who signed an EC2 request: AWS Signature Version 4 (what boto3 and the AWS CLI send, in the
Authorization header or a presigned query) and Version 2 (older tools), recomputed here with the
secret of the EC2 credential the request names (`openstack ec2 credentials create`).

Written here rather than taken from botocore: botocore's signers sign a request *now*, stamping
their own date and headers, where a verifier must rebuild the string the client signed from
what arrived; and the web process would carry botocore's 20 MB of service models for it.

AWS's rules: a request's date must lie within 15 minutes of the server's clock
(`RequestExpired` outside it), a presigned one also before its own expiry. On top, a signature
that changes something (any action but Describe*/Get*) is accepted once: within its 15 minutes a
replay of it is refused, so a captured DeleteVolume cannot be sent again. Reads may repeat (a
client polling in the same second sends the same signature twice), and so may a change carrying a
ClientToken: EC2 makes that one idempotent (boto3 fills RunInstances' in itself), so a replay
gets the first answer and makes nothing new.

Nothing here logs a secret or a signature.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from django.core.cache import cache
from django.http import HttpRequest

from cloud.identity.credentials import Ec2Pair, ec2_secret

from .errors import Ec2Error, auth_failure

WINDOW = dt.timedelta(minutes=15)
ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ec2"
UNSIGNED = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True)
class Signed:
    """What a request's signature proved: whose pair signed it, and the signature itself (the
    key of the replay check)."""

    pair: Ec2Pair
    signature: str


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def _header(request: HttpRequest, name: str) -> str:
    key = name.upper().replace("-", "_")
    meta = request.META
    value = meta.get(key) if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else meta.get(f"HTTP_{key}")
    return " ".join(str(value or "").split())


def _canonical_query(pairs: list[tuple[str, str]], leave_out: str) -> str:
    kept = sorted((_quote(k), _quote(v)) for k, v in pairs if k != leave_out)
    return "&".join(f"{k}={v}" for k, v in kept)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _pair(access: str) -> Ec2Pair:
    pair = ec2_secret(access) if access else None
    if pair is None:
        raise auth_failure()
    return pair


def _parse_amz_date(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise auth_failure(f"Invalid date: {text!r}; send X-Amz-Date as YYYYMMDDTHHMMSSZ.") \
            from None


def _check_window(signed_at: dt.datetime, now: dt.datetime,
                  expires: dt.datetime | None = None) -> None:
    if abs(now - signed_at) > WINDOW or (expires is not None and now > expires):
        raise Ec2Error(
            "RequestExpired",
            f"Request has expired: it was signed at {signed_at:%Y-%m-%dT%H:%M:%SZ} and the "
            f"server's time is {now:%Y-%m-%dT%H:%M:%SZ} (15 minutes are allowed either way).")


def _v4(request: HttpRequest, query: list[tuple[str, str]], body: bytes,
        fields: dict[str, str], presigned: bool, now: dt.datetime) -> Signed:
    credential = fields.get("Credential", "").split("/")
    signed_headers = fields.get("SignedHeaders", "")
    signature = fields.get("Signature", "")
    if len(credential) != 5 or credential[3] != SERVICE or credential[4] != "aws4_request" \
            or not signed_headers or not signature:
        raise auth_failure("The request's AWS4 credential scope, signed headers or signature "
                           "is malformed.")
    access, day, region, service, terminator = credential
    amz_date = fields.get("Date") or _header(request, "x-amz-date")
    if not amz_date:
        raise auth_failure("The request is not dated: send X-Amz-Date.")
    signed_at = _parse_amz_date(amz_date)
    if signed_at.strftime("%Y%m%d") != day:
        raise auth_failure("The credential scope's date is not the request's date.")
    expires = None
    if presigned:
        try:
            expires = signed_at + dt.timedelta(seconds=int(fields.get("Expires", "")))
        except ValueError:
            raise auth_failure("A presigned request needs X-Amz-Expires in seconds.") from None
    _check_window(signed_at, now, expires)
    pair = _pair(access)
    names = signed_headers.split(";")
    headers = "".join(f"{name}:{_header(request, name)}\n" for name in names)
    path = quote(request.path or "/", safe="/~")
    canonical_query = _canonical_query(query, "X-Amz-Signature" if presigned else "")
    payloads = [hashlib.sha256(body).hexdigest()]
    if presigned:
        payloads.append(UNSIGNED)  # botocore presigns non-S3 requests with an unsigned payload
    scope = f"{day}/{region}/{service}/{terminator}"
    key = _hmac(("AWS4" + pair.secret).encode(), day)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    for payload in payloads:
        canonical = "\n".join((request.method or "GET", path, canonical_query, headers,
                               signed_headers, payload))
        to_sign = "\n".join((ALGORITHM, amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()))
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, signature):
            return Signed(pair, signature)
    raise auth_failure("The request signature we calculated does not match the signature "
                       "you provided. Check your AWS secret access key and signing method.")


def _v2(request: HttpRequest, params: list[tuple[str, str]], now: dt.datetime) -> Signed:
    values = dict(params)
    method = values.get("SignatureMethod", "")
    digest = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}.get(method)
    signature = values.get("Signature", "")
    if digest is None or not signature:
        raise auth_failure("Signature version 2 needs SignatureMethod HmacSHA256 or HmacSHA1 "
                           "and a Signature.")
    if values.get("Expires"):
        expires = _parse_iso(values["Expires"])
        _check_window(min(expires, now), now, expires)
    elif values.get("Timestamp"):
        _check_window(_parse_iso(values["Timestamp"]), now)
    else:
        raise missing_timestamp()
    pair = _pair(values.get("AWSAccessKeyId", ""))
    host = (request.META.get("HTTP_HOST") or "").lower()
    to_sign = "\n".join((request.method or "GET", host, request.path or "/",
                         _canonical_query(params, "Signature")))
    expected = base64.b64encode(hmac.new(pair.secret.encode(), to_sign.encode(),
                                         digest).digest()).decode()
    if not hmac.compare_digest(expected, signature):
        raise auth_failure("The request signature we calculated does not match the signature "
                           "you provided. Check your AWS secret access key and signing method.")
    return Signed(pair, signature)


def missing_timestamp() -> Ec2Error:
    return Ec2Error("MissingParameter",
                    "The request must contain either a valid Timestamp or Expires parameter.")


def _parse_iso(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Ec2Error("InvalidParameterValue", f"Invalid timestamp {text!r}.") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def verify(request: HttpRequest, query: list[tuple[str, str]], body: bytes,
           params: list[tuple[str, str]], now: dt.datetime | None = None) -> Signed:
    """The pair that signed this request, or AuthFailure/RequestExpired. `query` is the URL's
    pairs, `body` the raw body, `params` every parameter (query and form) for Version 2."""
    now = now or _now()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.startswith(ALGORITHM + " "):
        fields = {}
        for part in header[len(ALGORITHM) + 1:].split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        return _v4(request, query, body, fields, False, now)
    values = dict(params)
    if values.get("X-Amz-Algorithm") == ALGORITHM:
        fields = {k[len("X-Amz-"):]: v for k, v in query if k.startswith("X-Amz-")}
        return _v4(request, query, body, fields, True, now)
    if values.get("SignatureVersion") == "2":
        return _v2(request, params, now)
    if header or values.get("AWSAccessKeyId") or values.get("Signature"):
        raise auth_failure("Kumo accepts AWS Signature Version 4 (AWS4-HMAC-SHA256) and "
                           "Version 2.")
    raise Ec2Error("AuthFailure", "The request is not signed: sign it with an EC2 access key "
                   "and secret (openstack ec2 credentials create).", 401)


def first_use(signed: Signed) -> bool:
    """True the first time this signature changes something within its window; a replay is
    False. The signature's digest is the key, so the cache holds no signature."""
    key = "ec2-signature:" + hashlib.sha256(signed.signature.encode()).hexdigest()
    return bool(cache.add(key, 1, timeout=int(WINDOW.total_seconds()) * 2))
