"""The peer bench's plan (no Oscar here: nothing of .venv-peer is imported by the test suite)."""

from __future__ import annotations

import subprocess
import sys

from bench import peer_bench


def test_importing_the_peer_bench_imports_nothing_of_django_or_oscar():
    code = ("import sys, bench.peer_bench; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'oscar', 'oscarapi'}))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=peer_bench.harness.ROOT)

    assert found.stdout.strip() == "[]"


def test_skus_follow_the_datagen_naming():
    # variant 3(p-1)+v of product p is SKU-p-v, in the app's datagen and in the Oscar generator
    assert [peer_bench.sku(vid) for vid in (1, 2, 3, 4, 6, 5998, 6000)] == [
        "SKU-1-1", "SKU-1-2", "SKU-1-3", "SKU-2-1", "SKU-2-3", "SKU-2000-1", "SKU-2000-3"]


def test_cart_adds_name_only_variants_in_stock_in_both_shops():
    variants = peer_bench.cart_variants()

    assert len(variants) == peer_bench.CART_ADDS
    assert all(1 <= vid <= peer_bench.PRODUCTS * 3 and vid % 17 for vid in variants)
    assert variants == peer_bench.cart_variants()  # the same adds in every run


def test_rounds_alternate_who_goes_first():
    sides = ["app, uncached", "app", "oscar"]

    assert peer_bench.in_round_order(sides, 1, key=str) == ["app, uncached", "app", "oscar"]
    assert peer_bench.in_round_order(sides, 2, key=str) == ["oscar", "app, uncached", "app"]
    assert peer_bench.in_round_order(sides, 3, key=str) == ["app, uncached", "app", "oscar"]
