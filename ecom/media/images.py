"""What an uploaded image must be, checked by its content, and its thumbnails.

Pillow opens the bytes and decodes every pixel: only JPEG, PNG, GIF and WebP pass. SVG (XML
that can carry script) and anything else Pillow cannot read as one of those is refused, and so
is a truncated or corrupt file, one larger than ``MAX_IMAGE_BYTES`` or with more pixels than
``MAX_PIXELS`` (a decompression bomb), and a name that is not a plain file name (``../x.jpg``).
A name's extension must match the content: a PNG called ``photo.jpg`` is refused with a message
saying what it really is, so nothing is stored under a type it is not.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from ecom.errors import ValidationFailed

# Pillow's name of the format -> (content type, the extensions a file of it may have).
FORMATS = {
    "JPEG": ("image/jpeg", ("jpg", "jpeg")),
    "PNG": ("image/png", ("png",)),
    "GIF": ("image/gif", ("gif",)),
    "WEBP": ("image/webp", ("webp",)),
}
MAX_PIXELS = 40_000_000
MAX_NAME_LENGTH = 200
THUMBNAIL_SIZES = (200, 800)
# A file name as a person gives it: no directories, no control characters, one extension.
NAME_PATTERN = re.compile(r"^[^/\\\x00-\x1f\x7f]+$")


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    format: str  # JPEG, PNG, GIF, WEBP
    content_type: str
    extension: str
    width: int
    height: int
    filename: str


def _refuse(filename: str, why: str) -> ValidationFailed:
    shown = (filename or "the file")[:80]
    return ValidationFailed(f"{shown}: {why}", {"images": [f"{shown}: {why}"]})


def check_filename(filename: str | None) -> str:
    """The file's name if it is a plain name with an extension. Raises ValidationFailed."""
    name = filename or ""
    if not name.strip():
        raise _refuse("", "the file has no name.")
    if (not NAME_PATTERN.match(name) or ".." in name or name.startswith(".")
            or len(name) > MAX_NAME_LENGTH):
        raise _refuse(name, "not a plain file name (no folders, no '..'); rename the file and try again.")
    if "." not in name:
        raise _refuse(name, "the name has no extension (.jpg, .png, .gif or .webp).")
    return name


def check_image(data: bytes, filename: str | None, *, max_bytes: int) -> CheckedImage:
    """``data`` as a checked image. Raises ValidationFailed saying what is wrong with it."""
    name = check_filename(filename)
    if len(data) > max_bytes:
        raise _refuse(name, f"the file is {len(data) / 1_048_576:.1f} MB; the limit is "
                            f"{max_bytes / 1_048_576:.0f} MB.")
    if not data:
        raise _refuse(name, "the file is empty.")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html")) or b"<svg" in head:
        raise _refuse(name, "SVG and other text formats can carry script and are not accepted; "
                            "upload a JPEG, PNG, GIF or WebP.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise _refuse(name, f"the image is {width}×{height} pixels; at most "
                                        f"{MAX_PIXELS // 1_000_000} million are accepted.")
                if image_format not in FORMATS:
                    raise _refuse(name, f"{image_format or 'this'} images are not accepted; "
                                        "upload a JPEG, PNG, GIF or WebP.")
                image.load()  # decodes every pixel: a truncated file fails here
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refuse(name, "not an image we can read (JPEG, PNG, GIF or WebP).") from None
    except (OSError, SyntaxError, ValueError):
        raise _refuse(name, "the image is damaged or incomplete (truncated); export it again.") from None
    content_type, extensions = FORMATS[image_format]
    extension = name.rsplit(".", 1)[1].lower()
    if extension not in extensions:
        raise _refuse(name, f"the file is a {image_format} image but its name ends in .{extension}; "
                            f"rename it to .{extensions[0]} and upload it again.")
    return CheckedImage(data=data, format=image_format, content_type=content_type,
                        extension=extensions[0], width=width, height=height, filename=name)


def make_thumbnail(data: bytes, size: int) -> bytes:
    """A WebP no wider or taller than ``size`` pixels (never enlarged), orientation applied."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image)
        image.thumbnail((size, size))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "transparency" in image.info or image.mode in ("LA", "P")
                                  else "RGB")
        out = io.BytesIO()
        image.save(out, "WEBP", quality=82, method=4)
        return out.getvalue()
