#!/usr/bin/env python3
"""Cross-check fixture generator: ACRO's per-cell verdicts on synthetic tables.

Run with the venv that has ACRO installed (see README.md in this folder):

    /tmp/acro-venv/bin/python tests/acro/crosscheck.py [OUT.json]

Without an argument the JSON goes to stdout. A one-line-per-table summary
goes to stderr. The output is deterministic (fixed seeds) for a given
acro / pandas / numpy version.

Each table is a list of microdata records {unit, row, col, value}, one record
per distinct unit. ACRO (default config, mitigation off) is run on each table
with acro.crosstab(); its per-cell outcome string is split into reasons.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pathlib
import random
import shutil
import sys
import tempfile
from typing import Any

import numpy as np
import pandas as pd

import acro
from acro.version import __version__ as ACRO_VERSION

# ACRO calls logging.basicConfig(level=INFO) at import; keep stderr readable.
logging.getLogger("acro").setLevel(logging.WARNING)
logging.getLogger().setLevel(logging.WARNING)

SEED = 20240611

# ACRO 1.0.2 names its checks after the statbarnsdc ontology. Map them onto
# the short rule names used by keyong's checker. Checks whose mask is always
# all-False (RequiredZeroCheck, PresenceOfLinkedTableCheck) never appear in a
# cell's outcome string, but are mapped for completeness.
CHECK_TO_RULE = {
    "MinimumThresholdCheck": "threshold",
    "NKCheck": "nk-rule",
    "PPercentCheck": "p-ratio",
    "PresenceOfZeroCheck": "zeros",
    "RequiredZeroCheck": "required-zero",
    "PresenceOfLinkedTableCheck": "linked-table",
    "AllSameValuesCheck": "all-values-are-same",
    "MissingCheck": "missing",
    "MinimumDoFCheck": "dof",
    "negative": "negative",
    "missing": "missing",
}


# ---------------------------------------------------------------------------
# ACRO parameters: read straight from the installed default.yaml
# ---------------------------------------------------------------------------
def read_params() -> dict[str, Any]:
    """Return the SDC parameters of the installed ACRO's default.yaml."""
    import yaml  # installed with acro

    path = pathlib.Path(acro.__file__).with_name("default.yaml")
    with open(path, encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle)
    return {
        "threshold": cfg["safe_threshold"],
        "n": cfg["safe_nk_n"],
        "k": cfg["safe_nk_k"],
        "p": cfg["safe_pratio_p"],
        "zeros_disclosive": cfg["zeros_are_disclosive"],
        "dof": cfg["safe_dof_threshold"],
        "check_missing_values": cfg["check_missing_values"],
        "default_yaml": str(path),
    }


# ---------------------------------------------------------------------------
# Table generation
# ---------------------------------------------------------------------------
class Builder:
    """Collects records for one table; every record is a fresh unit."""

    def __init__(self, name: str, aggfunc: str, seed: int, note: str) -> None:
        self.name = name
        self.aggfunc = aggfunc
        self.note = note
        self.rng = random.Random(seed)
        self.records: list[dict[str, Any]] = []

    def add(self, row: str, col: str, values: list[float]) -> None:
        for v in values:
            self.records.append(
                {"unit": "", "row": row, "col": col, "value": float(v)}
            )

    def count(self, row: str, col: str, n: int, lo: float = 1.0, hi: float = 100.0) -> None:
        """n records with uniform random values (2 decimals)."""
        self.add(row, col, [round(self.rng.uniform(lo, hi), 2) for _ in range(n)])

    def finish(self) -> dict[str, Any]:
        # shuffle record order deterministically, then number units
        self.rng.shuffle(self.records)
        for i, rec in enumerate(self.records):
            rec["unit"] = f"u{i + 1:04d}"
        return {
            "name": self.name,
            "aggfunc": self.aggfunc,
            "note": self.note,
            "records": self.records,
        }


def flat(n: int, v: float) -> list[float]:
    return [v] * n


def gen_tables() -> list[dict[str, Any]]:
    tables: list[dict[str, Any]] = []
    seq = iter(range(1, 1000))

    def new(kind: str, tag: str, note: str) -> Builder:
        i = next(seq)
        return Builder(f"t{i:02d}_{kind}_{tag}", kind, SEED + i, note)

    # ------------------------------------------------------------ frequency
    b = new("count", "small_cells", "3x3, every cell 1..9 records except (c,z) empty")
    for r in "abc":
        for c in "xyz":
            if (r, c) != ("c", "z"):
                b.count(r, c, b.rng.randint(1, 9))
    tables.append(b.finish())

    b = new("count", "boundary_10_9_1_0",
            "cells with exactly 10, 9, 1, 11, 2, 25, 0 (empty) and 10 records")
    for (r, c), n in {
        ("a", "x"): 10, ("a", "y"): 9, ("a", "z"): 1,
        ("b", "x"): 11, ("b", "y"): 2, ("b", "z"): 25,
        ("c", "x"): 0, ("c", "y"): 10, ("c", "z"): 10,
    }.items():
        b.count(r, c, n)
    tables.append(b.finish())

    b = new("count", "empty_cells", "3x4 with four empty row/col combinations (frequency zeros)")
    for r in "abc":
        for c in "wxyz":
            if (r, c) in {("a", "x"), ("b", "z"), ("c", "w"), ("c", "y")}:
                continue
            b.count(r, c, b.rng.randint(10, 30))
    tables.append(b.finish())

    b = new("count", "large_safe", "2x3, all cells 15..60 records: no failures expected")
    for r in "ab":
        for c in "xyz":
            b.count(r, c, b.rng.randint(15, 60))
    tables.append(b.finish())

    b = new("count", "oned_col", "1-D: single column category, rows with 12, 10, 9, 1, 30")
    for r, n in zip("abcde", [12, 10, 9, 1, 30]):
        b.count(r, "all", n)
    tables.append(b.finish())

    b = new("count", "oned_row", "1-D: single row category, columns with 10, 3, 40")
    for c, n in zip("xyz", [10, 3, 40]):
        b.count("all", c, n)
    tables.append(b.finish())

    b = new("count", "diagonal", "4x4, only the diagonal populated (12 zeros)")
    for i, r in enumerate("abcd"):
        b.count(r, "wxyz"[i], 12 + i)
    tables.append(b.finish())

    b = new("count", "singletons", "3x3, mixture of 0-, 1- and 10-record cells")
    for r in "abc":
        for c in "xyz":
            b.count(r, c, b.rng.choice([0, 1, 1, 10]))
    tables.append(b.finish())

    b = new("count", "random_4x3", "4x3, counts uniform 0..25, (d,y) forced empty")
    for r in "abcd":
        for c in "xyz":
            b.count(r, c, 0 if (r, c) == ("d", "y") else b.rng.randint(0, 25))
    tables.append(b.finish())

    b = new("count", "random_5x4", "5x4, counts uniform 0..15")
    for r in "abcde":
        for c in "wxyz":
            b.count(r, c, b.rng.randint(0, 15))
    tables.append(b.finish())

    b = new("count", "zero_row_category",
            "row 'c' has all its 14 records in one column: zeros elsewhere in its row")
    for r in "ab":
        for c in "xyz":
            b.count(r, c, b.rng.randint(10, 20))
    b.count("c", "y", 14)
    tables.append(b.finish())

    b = new("count", "ones_and_zeros", "3x3, each cell 0, 1 or 2 records")
    for r in "abc":
        for c in "xyz":
            b.count(r, c, b.rng.choice([0, 1, 2]))
    tables.append(b.finish())

    b = new("count", "sparse_6x5", "6x5, counts drawn from {0,0,0,1..15}")
    for r in "abcdef":
        for c in "vwxyz":
            b.count(r, c, b.rng.choice([0, 0, 0] + list(range(1, 16))))
    tables.append(b.finish())

    b = new("count", "oned_with_zero_col",
            "rows a,b; column 'z' only populated in row a (b,z is a zero); all else >=10")
    b.count("a", "x", 30)
    b.count("a", "z", 11)
    b.count("b", "x", 10)
    tables.append(b.finish())

    # ----------------------------------------- sum / mean / median / std
    for kind in ("sum", "mean", "median", "std"):
        b = new(kind, "dominance_one_unit",
                "cells of 12 records; in (a,x),(b,y) one unit holds >90% of the sum")
        for r in "ab":
            for c in "xy":
                vals = [round(b.rng.uniform(1, 10), 2) for _ in range(12)]
                if (r, c) in {("a", "x"), ("b", "y")}:
                    vals[0] = round(sum(vals[1:]) * 15, 2)
                b.add(r, c, vals)
        tables.append(b.finish())

        b = new(kind, "dominance_two_units",
                "cells of 11-14 records; in (a,y),(b,x) two units hold ~93% (each ~46%)")
        for r in "ab":
            for c in "xy":
                vals = [round(b.rng.uniform(1, 10), 2) for _ in range(b.rng.randint(11, 14))]
                if (r, c) in {("a", "y"), ("b", "x")}:
                    rest = sum(vals[2:])
                    vals[0] = round(rest * 6.8, 2)
                    vals[1] = round(rest * 6.5, 2)
                b.add(r, c, vals)
        tables.append(b.finish())

        b = new(kind, "pratio",
                "cells of 12 records: top1=100, top2=80..95, 10 small units summing <10 "
                "(2nd largest estimates largest within 10%) in (a,x),(a,y); "
                "(b,x) NK-only (50,45,rest=5 -> p=0.1 not < 0.1); (b,y) safe")
        b.add("a", "x", [100.0, 95.0] + flat(10, 0.5))
        b.add("a", "y", [100.0, 80.0] + flat(10, 0.9))
        b.add("b", "x", [50.0, 45.0] + flat(10, 0.5))
        b.add("b", "y", [round(b.rng.uniform(10, 20), 2) for _ in range(12)])
        tables.append(b.finish())

        b = new(kind, "boundaries",
                "exact boundaries with integer values: NK ratio exactly 0.9 (a,x); "
                "NK 0.89 (a,y); p-ratio exactly 0.1 (b,x, which fails NK 0.95); "
                "p 0.09 (c,x); 10 vs 9 records (b,y)/(c,y)")
        b.add("a", "x", [45.0, 45.0] + flat(10, 1.0))          # 90/100 -> NK fail (>=)
        b.add("a", "y", [45.0, 44.0] + flat(11, 1.0))          # 89/100 -> pass
        b.add("b", "x", [100.0, 90.0] + flat(10, 1.0))         # rest/top1 = 10/100 = 0.1 -> pass
        b.add("b", "y", flat(10, 7.0))                          # exactly 10 records
        b.add("c", "x", [100.0, 90.0] + flat(9, 1.0) + [0.0])  # rest 9 -> p fail; NK 190/199
        b.add("c", "y", flat(9, 7.0))                           # 9 records -> threshold
        tables.append(b.finish())

        b = new(kind, "zero_values",
                "cells whose records all have value 0 (a,x 12 recs; b,y 3 recs), "
                "a cell with one non-zero (a,y), and safe cells")
        b.add("a", "x", flat(12, 0.0))
        b.add("a", "y", [50.0] + flat(11, 0.0))
        b.add("b", "x", [round(b.rng.uniform(5, 9), 2) for _ in range(15)])
        b.add("b", "y", flat(3, 0.0))
        tables.append(b.finish())

        b = new(kind, "large_safe",
                "2x3, 20..40 records per cell, values uniform 40..60: no failures expected")
        for r in "ab":
            for c in "xyz":
                b.count(r, c, b.rng.randint(20, 40), 40.0, 60.0)
        tables.append(b.finish())

        b = new(kind, "empty_cells",
                "3x3 with three empty combinations (NaN cells) and safe others")
        for r in "abc":
            for c in "xyz":
                if (r, c) in {("a", "z"), ("b", "x"), ("c", "y")}:
                    continue
                b.count(r, c, b.rng.randint(12, 25), 10.0, 20.0)
        tables.append(b.finish())

        b = new(kind, "oned",
                "1-D: single column category; rows: safe 20, dominated 15, 9 records, 1 record")
        b.count("a", "all", 20, 10.0, 20.0)
        b.add("b", "all", [1000.0] + [round(b.rng.uniform(1, 5), 2) for _ in range(14)])
        b.count("c", "all", 9, 10.0, 20.0)
        b.count("d", "all", 1, 10.0, 20.0)
        tables.append(b.finish())

        b = new(kind, "small_counts",
                "3x3, 1..9 records per cell (threshold everywhere; 1-2 record cells also dominance)")
        for r in "abc":
            for c in "xyz":
                b.count(r, c, b.rng.randint(1, 9))
        tables.append(b.finish())

        b = new(kind, "random_mixed",
                "4x3, 0..20 records, lognormal values (skewed), seeded")
        nrng = np.random.default_rng(SEED)
        for r in "abcd":
            for c in "xyz":
                n = b.rng.randint(0, 20)
                vals = np.round(nrng.lognormal(2.0, 1.5, size=n), 2)
                b.add(r, c, [float(v) for v in vals])
        tables.append(b.finish())

        b = new(kind, "negatives",
                "contains negative values: ACRO then replaces NK/p-ratio by a "
                "'cell has a negative' mask (status review) for the WHOLE table")
        b.add("a", "x", [-5.0] + [round(b.rng.uniform(1, 10), 2) for _ in range(14)])
        b.add("a", "y", [500.0] + flat(11, 1.0))   # dominated, but not flagged by ACRO
        b.add("b", "x", [round(b.rng.uniform(1, 10), 2) for _ in range(15)])
        b.add("b", "y", [-2.0, 3.0, 4.0])
        tables.append(b.finish())

    return tables


# ---------------------------------------------------------------------------
# Running ACRO
# ---------------------------------------------------------------------------
def split_outcome(text: str) -> list[str]:
    """'NKCheck; MinimumThresholdCheck; ' -> ['NKCheck', 'MinimumThresholdCheck']."""
    if text == "ok" or text == "":
        return []
    return [part.strip() for part in text.split(";") if part.strip()]


def none_if_nan(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def run_acro(session: acro.ACRO, table: dict[str, Any], dof_threshold: int) -> dict[str, Any]:
    df = pd.DataFrame(table["records"])
    row = df["row"].rename("row")
    col = df["col"].rename("col")
    val = df["value"].rename("value")
    if table["aggfunc"] == "count":
        out = session.crosstab(row, col, margins=False)
    else:
        out = session.crosstab(row, col, values=val, aggfunc=table["aggfunc"], margins=False)
    rec = session.results.get_index(-1)
    outcome: pd.DataFrame = rec.outcome

    # the outcome frame has the same index/columns as the table
    assert list(outcome.index) == list(out.index), (outcome.index, out.index)
    assert list(outcome.columns) == list(out.columns), (outcome.columns, out.columns)
    rows = [str(r) for r in out.index]
    cols = [str(c) for c in out.columns]

    # cross-check outcome strings against the positional masks in rec.sdc
    from_sdc: dict[tuple[int, int], set[str]] = {}
    for check, positions in rec.sdc.get("cells", {}).items():
        for i, j in positions:
            from_sdc.setdefault((i, j), set()).add(check)

    check_status = dict(rec.fair.get("check_status", {})) if isinstance(rec.fair, dict) else {}
    negatives_present = bool((df["value"] < 0).any()) and table["aggfunc"] != "count"

    def rule_of(check: str) -> str:
        # sdcchecks.py:661-667 / 701-707: with any negative value in the table,
        # NKCheck and PPercentCheck return status "review" and, as their mask,
        # "cell contains a negative value" instead of a dominance test.
        if (
            negatives_present
            and check in ("NKCheck", "PPercentCheck")
            and check_status.get(check) == "review"
        ):
            return "negative"
        return CHECK_TO_RULE.get(check, check)

    counts = df.groupby(["row", "col"]).size()
    cells = []
    mismatches = []
    dof_corrected = 0
    for i, r in enumerate(out.index):
        for j, c in enumerate(out.columns):
            raw = str(outcome.loc[r, c])
            checks = split_outcome(raw)
            if set(checks) != from_sdc.get((i, j), set()):
                mismatches.append([str(r), str(c), checks, sorted(from_sdc.get((i, j), set()))])
            # ACRO's crosstab passes the table of degrees of freedom itself as
            # MinimumDoFCheck's mask, so every cell with dof > 0 "fails" and a
            # cell with dof = 0 passes. Apply the rule ACRO documents instead:
            # dof = records - 1 must reach safe_dof_threshold.
            if table["aggfunc"] == "std":
                dof = int(counts.get((str(r), str(c)), 0)) - 1
                wrong = ("MinimumDoFCheck" in checks) != (dof < dof_threshold)
                dof_corrected += int(wrong)
                checks = [x for x in checks if x != "MinimumDoFCheck"]
                if dof < dof_threshold:
                    checks.append("MinimumDoFCheck")
            cells.append(
                {
                    "row": str(r),
                    "col": str(c),
                    "acro_fail": bool(checks),
                    "acro_reasons": sorted({rule_of(x) for x in checks}),
                    "acro_outcome": raw,
                    "acro_value": none_if_nan(out.loc[r, c]),
                }
            )

    return {
        "rows": rows,
        "cols": cols,
        "acro_status": rec.status,
        "acro_check_status": check_status,
        "negatives_present": negatives_present,
        "outcome_sdc_mismatches": mismatches,
        "dof_corrected": dof_corrected,
        "cells": cells,
    }


def main(argv: list[str]) -> int:
    out_path = os.path.abspath(argv[1]) if len(argv) > 1 else None
    params = read_params()
    tables = gen_tables()

    origin = os.getcwd()
    workdir = tempfile.mkdtemp(prefix="acro-crosscheck-")
    try:
        os.chdir(workdir)  # ACRO must not write anything into the repo
        session = acro.ACRO(suppress=False)
        logging.getLogger("acro").setLevel(logging.WARNING)
        assert session.mitigation == "none", session.mitigation
        for table in tables:
            table.update(run_acro(session, table, params["dof"]))
    finally:
        os.chdir(origin)
        shutil.rmtree(workdir, ignore_errors=True)

    doc = {
        "acro_version": ACRO_VERSION,
        "pandas_version": pd.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "params": {
            "threshold": params["threshold"],
            "n": params["n"],
            "k": params["k"],
            "p": params["p"],
            "zeros_disclosive": params["zeros_disclosive"],
            "dof": params["dof"],
        },
        "check_to_rule": CHECK_TO_RULE,
        "tables": [
            {
                "name": t["name"],
                "aggfunc": t["aggfunc"],
                "note": t["note"],
                "acro_status": t["acro_status"],
                "acro_check_status": t["acro_check_status"],
                "negatives_present": t["negatives_present"],
                "records": t["records"],
                "rows": t["rows"],
                "cols": t["cols"],
                "cells": t["cells"],
                "outcome_sdc_mismatches": t["outcome_sdc_mismatches"],
                "dof_corrected": t["dof_corrected"],
            }
            for t in tables
        ],
    }

    text = json.dumps(doc, indent=1, allow_nan=False)
    if out_path:
        with open(out_path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")

    # summary on stderr
    for t in doc["tables"]:
        failing = [c for c in t["cells"] if c["acro_fail"]]
        reasons: dict[str, int] = {}
        for c in failing:
            for r in c["acro_reasons"]:
                reasons[r] = reasons.get(r, 0) + 1
        print(
            f"{t['name']:<32} {t['aggfunc']:<5} recs={len(t['records']):>3} "
            f"cells={len(t['cells']):>2} fail={len(failing):>2} status={t['acro_status']:<6} "
            f"{reasons}" + (f" MISMATCH={t['outcome_sdc_mismatches']}" if t["outcome_sdc_mismatches"] else ""),
            file=sys.stderr,
        )
    coverage: dict[str, int] = {}
    for t in doc["tables"]:
        for rule in {r for c in t["cells"] for r in c["acro_reasons"]}:
            coverage[rule] = coverage.get(rule, 0) + 1
    n = len(doc["tables"])
    kinds = {k: sum(t["aggfunc"] == k for t in doc["tables"]) for k in ("count", "sum", "mean", "median", "std")}
    print(f"{n} tables {kinds}; tables with >=1 failing cell per rule: "
          + ", ".join(f"{r}={v} ({100 * v / n:.0f}%)" for r, v in sorted(coverage.items())),
          file=sys.stderr)
    bad = [t["name"] for t in doc["tables"] if t["outcome_sdc_mismatches"]]
    if bad:
        print(f"WARNING: outcome/sdc mismatch in {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
