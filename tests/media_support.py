"""Image files for upload tests, made with Pillow."""

from __future__ import annotations

import io

from PIL import Image


def image_bytes(image_format: str = "PNG", size: tuple[int, int] = (1200, 900),
                colour=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, image_format)
    return out.getvalue()
