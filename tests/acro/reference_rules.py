#!/usr/bin/env python3
"""Pure-Python restatement of ACRO 1.0.2's per-cell table rules.

Needs no ACRO: reads the JSON written by crosscheck.py and recomputes every
cell's verdict and value from the records, using the rules as README.md states
them. Exit status 0 iff every cell agrees with ACRO. Run with plain python3:

    python3 tests/acro/reference_rules.py /tmp/acro-crosscheck.json

This is the executable form of the semantics the Rust checker must cover.
"""

from __future__ import annotations

import json
import math
import sys


def cell_rules(aggfunc, values, table_has_negative, params):
    """Return (set of rule names ACRO reports, ACRO's cell value or None)."""
    t, k, p, n_top = params["threshold"], params["k"], params["p"], params["n"]
    n = len(values)
    reasons = set()

    # MinimumThresholdCheck (sdcchecks.py:562-565): count < threshold, every kind
    if n < t:
        reasons.add("threshold")

    if aggfunc == "count":
        # PresenceOfZeroCheck (sdcchecks.py:814-816): count == 0, count tables only
        if params["zeros_disclosive"] and n == 0:
            reasons.add("zeros")
        return reasons, float(n)

    # sum / mean: dominance checks run on the *values* of the cell's records
    if table_has_negative:
        # sdcchecks.py:661-667 and 701-707: any negative anywhere in the table
        # -> both dominance checks flag exactly the cells holding a negative
        if any(v < 0 for v in values):
            reasons.add("negative")
    elif n > 0:
        s = sum(values)
        top = sorted(values, reverse=True)
        top1 = top[0]
        topn = sum(top[:n_top])
        top2 = sum(top[:2])
        # NKCheck (sdcchecks.py:668-672): top_n_sum / sum >= k ; 0/0 -> NaN -> pass
        if s != 0 and topn / s >= k:
            reasons.add("nk-rule")
        # PPercentCheck (sdcchecks.py:712-719):
        #   p_val = (sum - top1 - top2) / top1, or (sum - top1 - top2) if top1 == 0
        rest = s - top2
        p_val = rest if top1 == 0 else rest / top1
        if p_val < p:
            reasons.add("p-ratio")
    # n == 0: sum/max are NaN -> NK NaN>=k False, p_val NaN -> fillna(1.0) -> pass

    if n == 0:
        return reasons, None
    s = sum(values)
    return reasons, (s if aggfunc == "sum" else s / n)


def main(path):
    doc = json.load(open(path, encoding="utf-8"))
    params = doc["params"]
    bad = 0
    for tab in doc["tables"]:
        by_cell = {}
        for rec in tab["records"]:
            by_cell.setdefault((rec["row"], rec["col"]), []).append(rec["value"])
        has_neg = tab["aggfunc"] != "count" and any(
            rec["value"] < 0 for rec in tab["records"]
        )
        for cell in tab["cells"]:
            vals = by_cell.get((cell["row"], cell["col"]), [])
            reasons, value = cell_rules(tab["aggfunc"], vals, has_neg, params)
            ok = reasons == set(cell["acro_reasons"]) and bool(reasons) == cell["acro_fail"]
            av = cell["acro_value"]
            if (value is None) != (av is None) or (
                value is not None and not math.isclose(value, av, rel_tol=1e-9, abs_tol=1e-9)
            ):
                ok = False
            if not ok:
                bad += 1
                print(f"MISMATCH {tab['name']} ({cell['row']},{cell['col']}): "
                      f"ref {sorted(reasons)} {value} vs acro {cell['acro_reasons']} {av}")
    n_cells = sum(len(t["cells"]) for t in doc["tables"])
    print(f"{n_cells - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/dev/stdin"))
