"""The OpenDP baseline of `cargo xtask bench privacy`: the same grouped
count + sum over the same Parquet file, with OpenDP's Polars API, the same
bounds (kwh in [0, 1000], one row per household per group, at most MONTHS
groups per household) and the same zCDP rho. Prints one JSON line.

usage: python3 opendp_polars.py <file.parquet> <rho> <months> <households> <runs>
"""

import json
import sys
import time

import opendp.prelude as dp
import polars as pl

dp.enable_features("contrib")

path, rho, months, households, runs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])


def once():
    lf = pl.scan_parquet(path).select("person", "district", "bill_date", pl.col("kwh").cast(pl.Float64))
    context = dp.Context.compositor(
        data=lf,
        privacy_unit=dp.unit_of(contributions=months, identifier="person"),
        privacy_loss=dp.loss_of(rho=rho),
        split_evenly_over=1,
        margins=[
            dp.polars.Margin(by=["district", "bill_date"], invariant="keys", max_length=households * months),
        ],
    )
    query = (
        context.query()
        .group_by("district", "bill_date")
        .agg(dp.len(), pl.col("kwh").fill_null(0.0).dp.sum((0.0, 1000.0)))
    )
    return query.release().collect()


best, rows = float("inf"), 0
for _ in range(runs):
    t = time.perf_counter()
    out = once()
    best = min(best, time.perf_counter() - t)
    rows = out.height
print(json.dumps({"seconds": best, "cells": rows, "opendp": dp.__version__ if hasattr(dp, "__version__") else "unknown"}))
