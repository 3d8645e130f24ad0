"""boto3 sessions and clients for kaad, and AWS errors turned into one clear line.

Clients are created lazily, never at import. The standard credential chain applies
(environment, profile, SSO, instance role); ``AWS_ENDPOINT_URL`` (or a per-service
``AWS_ENDPOINT_URL_<SERVICE>``) is honoured by botocore itself, which is how the tests point
kaad at a moto server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from errors import KaadError


class AwsError(KaadError, RuntimeError):
    """An AWS call failed for a reason the user can fix (credentials, names, permissions)."""


#: CloudWatch re-read window before a checkpoint. EKS delivers audit events within seconds to
#: minutes; 15 minutes leaves a wide margin while a daily run re-reads about 1% of its events.
OVERLAP = timedelta(minutes=15)


@dataclass(frozen=True)
class AwsOptions:
    """Where and as whom to call AWS, and which time range to read."""

    region: str | None = None
    profile: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    checkpoint: str | None = None  # path of the checkpoint file (CloudWatch)
    overlap: timedelta = OVERLAP  # CloudWatch: re-read this far before the checkpoint
    workers: int = 4  # streams or objects read in parallel
    page_size: int | None = None  # FilterLogEvents page size (None: the service's)


def session(options: AwsOptions):
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=options.profile, region_name=options.region)
    except ProfileNotFound:
        raise AwsError(
            f"AWS profile {options.profile!r} not found in ~/.aws/config; fix --profile or AWS_PROFILE"
        ) from None


def client(options: AwsOptions, service: str):
    """A client with botocore's adaptive retries (backs off on throttling, then retries)."""
    from botocore.config import Config

    sess = session(options)
    if sess.region_name is None:
        raise AwsError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    config = Config(retries={"mode": "adaptive", "max_attempts": 8}, user_agent_extra="kaad")
    return sess.client(service, config=config)


_FIXES = {
    "ResourceNotFoundException": "check the name (and --region)",
    "NoSuchBucket": "check the bucket name (and --region)",
    "AccessDenied": "grant the permission named above to these credentials",
    "AccessDeniedException": "grant the permission named above to these credentials",
    "ExpiredToken": "the session expired: log in again (aws sso login) or refresh the credentials",
    "ExpiredTokenException": "the session expired: log in again (aws sso login) or refresh the credentials",
    "UnrecognizedClientException": "the credentials are not valid: check the access key",
    "InvalidClientTokenId": "the credentials are not valid: check the access key",
    "InvalidAccessKeyId": "the credentials are not valid: check the access key",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
}


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn botocore errors raised inside into :class:`AwsError` naming ``what`` and the fix."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        yield
    except NoCredentialsError:
        raise AwsError(
            f"{what}: no AWS credentials found; set AWS_PROFILE, run aws sso login, "
            "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from None
    except NoRegionError:
        raise AwsError(f"{what}: no AWS region; pass --region or set AWS_REGION") from None
    except EndpointConnectionError as exc:
        raise AwsError(f"{what}: cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}") from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code = err.get("Code", "Unknown")
        message = err.get("Message") or code
        fix = _FIXES.get(code, "see the AWS error above")
        raise AwsError(f"{what}: {code}: {message} ({fix})") from None
    except BotoCoreError as exc:
        raise AwsError(f"{what}: {exc}") from None
