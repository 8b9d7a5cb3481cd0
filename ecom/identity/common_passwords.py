"""The list of common passwords a shopper or staff member may not choose.

``common_passwords.txt`` beside this module holds them, lower case, one a line.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

LIST_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    """The list, read once per process."""
    lines = LIST_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def is_common_password(password: str) -> bool:
    """Whether ``password`` is on the list, ignoring case and Unicode look-alikes
    (``ＰａｓｓＷｏｒｄ１`` is ``password1``)."""
    return unicodedata.normalize("NFKC", password or "").strip().lower() in common_passwords()
