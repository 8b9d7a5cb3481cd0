"""Where uploaded files live: ``Storage`` with two backends.

``LocalStorage`` keeps files under ``instance/media/`` (``MEDIA_ROOT``) and the app serves them
at ``/media/<key>``; ``S3Storage`` puts them in an S3-compatible bucket through boto3 when
``MEDIA_S3_BUCKET`` is set. ``storage()`` picks one from the settings. Keys are relative,
slash-separated paths the services make up themselves (never a user's file name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from ecom.runtime import settings

# What a key may look like: segments of safe characters, no "..", no leading slash.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9]+)?(?:/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9]+)?)*$")
LOCAL_URL_PREFIX = "/media/"


def check_key(key: str) -> str:
    """``key`` if it is a relative path of safe segments. Raises ValueError otherwise."""
    if not isinstance(key, str) or len(key) > 300 or not KEY_PATTERN.match(key):
        raise ValueError(f"Not a storage key: {key!r}")
    return key


class Storage(Protocol):
    name: str

    def save(self, key: str, data: bytes, content_type: str) -> None: ...

    def read(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def url(self, key: str) -> str:
        """Where a browser fetches ``key``: absolute, or a path on this site (``/media/...``)."""


class LocalStorage:
    """Files under ``root``; served by the app at ``/media/<key>``."""

    name = "local"

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:
            raise ValueError(f"Not a storage key: {key!r}")
        return path

    def save(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(data)
        partial.replace(path)  # a reader never sees half a file

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def url(self, key: str) -> str:
        return LOCAL_URL_PREFIX + quote(check_key(key))


class S3Storage:
    """Objects in an S3-compatible bucket (AWS, MinIO, R2, moto...), through boto3."""

    name = "s3"

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 public_url: str | None = None):
        import boto3

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.public_url = public_url
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                   aws_access_key_id=access_key_id,
                                   aws_secret_access_key=secret_access_key)

    def save(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type,
                               CacheControl="public, max-age=31536000, immutable")

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def url(self, key: str) -> str:
        key = quote(check_key(key))
        if self.public_url:
            return f"{self.public_url.rstrip('/')}/{key}"
        if self.endpoint_url:  # path style: works for MinIO, moto and any bucket name
            return f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{key}"
        region = self.region or "us-east-1"
        return f"https://{self.bucket}.s3.{region}.amazonaws.com/{key}"


_cache: dict[tuple, Storage] = {}


def storage(app=None) -> Storage:
    """The configured backend (one per distinct configuration, per process)."""
    config = settings(app)
    bucket = config.get("MEDIA_S3_BUCKET")
    if bucket:
        options = (bucket, config.get("MEDIA_S3_ENDPOINT_URL"), config.get("MEDIA_S3_REGION"),
                   config.get("MEDIA_S3_ACCESS_KEY_ID"), config.get("MEDIA_S3_SECRET_ACCESS_KEY"),
                   config.get("MEDIA_S3_PUBLIC_URL"))
        if options not in _cache:
            _cache[options] = S3Storage(bucket, endpoint_url=options[1], region=options[2],
                                        access_key_id=options[3], secret_access_key=options[4],
                                        public_url=options[5])
        return _cache[options]
    return LocalStorage(config["MEDIA_ROOT"])
