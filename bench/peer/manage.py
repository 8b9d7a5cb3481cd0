#!/usr/bin/env python
"""The peer shop's manage.py: run it with .venv-peer/bin/python only (`make bench-peer` does)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peershop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
