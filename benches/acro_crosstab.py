"""The ACRO baseline of `cargo xtask bench check`: the same sum table over
the same records, checked and suppressed by ACRO (suppress=True). Prints one
JSON line: the best wall time of <runs> (the DataFrame already in memory),
and ACRO's cell and suppression counts.

Needs `pip install -r tests/acro/requirements.txt` (acro==1.0.2).

usage: python acro_crosstab.py <records.csv> <runs>
"""

import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import pandas as pd

path, runs = sys.argv[1], int(sys.argv[2])
df = pd.read_csv(path, dtype={"unit": str, "row": str, "col": str, "value": float})
work = tempfile.mkdtemp()
os.chdir(work)
import acro  # noqa: E402  (ACRO writes its outputs into the working directory)

best, table = None, None
for _ in range(runs):
    session = acro.ACRO(suppress=True)
    t = time.perf_counter()
    table = session.crosstab(df["row"], df["col"], values=df["value"], aggfunc="sum")
    elapsed = time.perf_counter() - t
    best = elapsed if best is None else min(best, elapsed)
shutil.rmtree(work, ignore_errors=True)
cells = int(table.size)
print(json.dumps({"best_s": best, "cells": cells, "suppressed": int(np.isnan(table.to_numpy(dtype=float)).sum()), "acro_version": acro.__version__ if hasattr(acro, "__version__") else "1.0.2"}))
