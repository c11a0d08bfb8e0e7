"""Where does LC beat LFU? The Table II reconstruction swept over the choices the paper does not publish.

    python reports/table2_sweep.py            # 54 settings x 40 runs x 88 requests, about 2 minutes
    python reports/table2_sweep.py --runs 10  # quicker

Every setting applies to all five policies; each row gives LC's and LFU's mean system cost and which is
lower. The summary is in docs/model.md ("Table II restated").
"""

from __future__ import annotations

import argparse
import itertools
import json

from pfmbench.table2 import restate

GRID = {
    "gpu_memory_gb": [24.0, 40.0, 80.0],
    "alpha": [0.4, 0.8, 1.2],
    "half_life_s": [60.0, 600.0, 6000.0],
    "admission": ["always", "outrank"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--json", action="store_true", help="one JSON object per setting instead of a table")
    a = ap.parse_args()
    keys = list(GRID)
    wins = ties = 0
    rows = []
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(keys, values, strict=True))
        ours = restate(runs=a.runs, **setting)
        lc, lfu = ours["lc"]["system_cost"], ours["lfu"]["system_cost"]
        wins += lc < lfu
        ties += lc == lfu
        winner = "tie" if lc == lfu else "LC" if lc < lfu else "LFU"
        rows.append({**setting, "lc": lc, "lfu": lfu, "fifo": ours["fifo"]["system_cost"],
                     "cloud": ours["cloud"]["system_cost"], "lower": winner})
        if a.json:
            print(json.dumps(rows[-1]))
        else:
            print(f"gpu {values[0]:>4g} GB  alpha {values[1]:.1f}  half-life {values[2]:>6g} s  {values[3]:<7}  "
                  f"lc {lc:8.2f}  lfu {lfu:8.2f}  fifo {rows[-1]['fifo']:8.2f}  cloud {rows[-1]['cloud']:6.2f}  "
                  f"{winner}", flush=True)
    if not a.json:
        print(f"LC below LFU in {wins} of {len(rows)} settings, equal in {ties} (nothing evicted or nothing differs)")


if __name__ == "__main__":
    main()
