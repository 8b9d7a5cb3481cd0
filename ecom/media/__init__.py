"""Uploaded files: one storage interface (local disk or an S3-compatible bucket) and the
checks an uploaded image passes before anything is stored."""
