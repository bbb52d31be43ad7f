"""The OpenDP baseline of `cargo xtask bench privacy`: the same grouped
count + sum over the same Parquet file with OpenDP's Polars API, the same
contribution bounds (one row per household per group, at most <months>
groups per household, kwh in [0, 1000]), the same public key set and the
same zCDP rho. Prints one JSON line.

Needs `pip install "opendp[polars]==0.16.0"` (it pins polars 1.36.1 and pulls pyarrow).

usage: python3 opendp_polars.py <file.parquet> <rho> <months> <runs> <district,district,...>
"""

import json
import sys
import time

import opendp.prelude as dp
import polars as pl

dp.enable_features("contrib")

path, rho, months, runs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
districts = sys.argv[5].split(",")
dates = [f"2025-{m:02d}" for m in range(1, months + 1)]
keys = pl.LazyFrame(
    {"district": [d for d in districts for _ in dates], "bill_date": [m for _ in districts for m in dates]}
)
by = ["district", "bill_date"]
# A loose public bound on a group's row count (OpenDP needs one for sums).
MAX_LENGTH = 100_000_000


def once():
    context = dp.Context.compositor(
        data=pl.scan_parquet(path),
        privacy_unit=dp.unit_of(contributions=1, identifier="person"),
        privacy_loss=dp.loss_of(rho=rho),
        split_evenly_over=1,
        margins=[dp.polars.Margin(by=by, invariant="keys", max_length=MAX_LENGTH, max_groups=len(districts) * months)],
    )
    query = (
        context.query()
        .truncate_per_group(1, by=by)
        # keep="sample" builds a struct with duplicate field names that polars 1.36 rejects.
        .truncate_num_groups(months, by=by, keep="first")
        .group_by(*by)
        .agg(dp.len(), pl.col("kwh").fill_null(0.0).dp.sum((0.0, 1000.0)))
        .with_keys(keys)
    )
    return query.release().collect()


best, cells = float("inf"), 0
for _ in range(runs):
    t = time.perf_counter()
    out = once()
    best = min(best, time.perf_counter() - t)
    cells = out.height
print(json.dumps({"seconds": best, "cells": cells}))
