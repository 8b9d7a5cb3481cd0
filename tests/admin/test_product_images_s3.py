"""The S3 storage backend against a real S3 API served locally (moto in server mode, over
HTTP on a free port): upload, thumbnails, the API's URLs, delete."""

from __future__ import annotations

import io
import json
import urllib.request

import pytest
from sqlalchemy import select

from ecom.catalog.models import ProductImage
from tests.factories import ProductFactory, VariantFactory
from tests.media_support import image_bytes

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BUCKET = "shop-media-test"


@pytest.fixture(scope="module")
def s3_endpoint():
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(app, s3_endpoint, monkeypatch):
    settings = {"MEDIA_S3_BUCKET": BUCKET, "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
                "MEDIA_S3_REGION": "us-east-1", "MEDIA_S3_ACCESS_KEY_ID": "testing",
                "MEDIA_S3_SECRET_ACCESS_KEY": "testing", "MEDIA_S3_PUBLIC_URL": None}
    for name, value in settings.items():
        monkeypatch.setitem(app.config, name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    # As a shop's bucket is set up: anyone may read its objects (the images are public).
    client.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _keys(client) -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_upload_thumbnail_api_url_and_delete_through_s3(as_role, app, db, s3_bucket, s3_endpoint, tmp_path,
                                                        monkeypatch):
    monkeypatch.setitem(app.config, "MEDIA_ROOT", str(tmp_path / "local"))
    product = ProductFactory(slug="s3-lamp", is_active=True)
    VariantFactory(product=product)
    db.session.commit()
    admin = as_role("merchandiser")

    # When an image is uploaded with the S3 backend configured
    response = admin.post(f"/admin/product/{product.id}/images/upload", content_type="multipart/form-data",
                          data={"images": [(io.BytesIO(image_bytes("JPEG")), "lamp.jpg")]},
                          follow_redirects=True)
    assert "1 image(s) uploaded." in response.get_data(as_text=True)

    # Then the original and both WebP thumbnails are objects in the bucket, nothing on the disk
    image = db.session.scalar(select(ProductImage).where(ProductImage.product_id == product.id))
    stem = image.storage_key.rsplit(".", 1)[0]
    assert _keys(s3_bucket) == sorted([image.storage_key, f"{stem}-200.webp", f"{stem}-800.webp"])
    head = s3_bucket.head_object(Bucket=BUCKET, Key=f"{stem}-200.webp")
    assert head["ContentType"] == "image/webp"
    assert not (tmp_path / "local").exists()

    # And the API's URLs are absolute addresses in the bucket that serve the files
    detail = app.test_client().get("/api/v1/products/s3-lamp").get_json()
    urls = detail["images"][0]
    assert urls["url"] == f"{s3_endpoint}/{BUCKET}/{image.storage_key}"
    assert urls["thumbnail_url"] == f"{s3_endpoint}/{BUCKET}/{stem}-200.webp"
    with urllib.request.urlopen(urls["url"]) as fetched:
        assert fetched.read()[:3] == b"\xff\xd8\xff"

    # When the image is removed, its three objects go with it
    admin.post(f"/admin/product/{product.id}/images", data={"delete": str(image.id)}, follow_redirects=True)
    assert _keys(s3_bucket) == []


def test_a_refused_upload_puts_nothing_in_the_bucket(as_role, db, s3_bucket):
    product = ProductFactory()
    db.session.commit()

    as_role("merchandiser").post(f"/admin/product/{product.id}/images/upload",
                                 content_type="multipart/form-data",
                                 data={"images": [(io.BytesIO(image_bytes("PNG")), "ok.png"),
                                                  (io.BytesIO(b"<svg onload='x()'/>"), "x.png")]})

    assert _keys(s3_bucket) == []
