"""`pfmbench synth`: write a synthetic trace (thin wrapper over pfmbench.trace.synth)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..catalog import load_catalog
from ..errors import InputError
from ..trace.synth import (
    ARRIVALS,
    BYTES_PER_REQUEST,
    MMPP_DEFAULT,
    check_args,
    estimate_requests,
    write_synth,
)
from . import app
from .options import CatalogOpt, guard_outputs, progress_bar


@app.command()
def synth(
    output: Annotated[str, typer.Option("-o", "--output", help="Parquet file to write (`-`: stdout).")],
    requests: Annotated[int | None, typer.Option(help="Number of requests.")] = None,
    duration: Annotated[float | None, typer.Option(help="Trace length in seconds (with or instead of --requests).")] = None,
    rate: Annotated[float, typer.Option(help="Mean arrival rate, requests/s.")] = 1.0,
    arrivals: Annotated[str, typer.Option(help=f"Arrival process: {' | '.join(ARRIVALS)}.")] = "poisson",
    cv: Annotated[float, typer.Option(help="gamma: coefficient of variation of inter-arrival times.")] = 2.0,
    mmpp_on: Annotated[float, typer.Option(help="mmpp: mean on-period (burst), s.")] = MMPP_DEFAULT[0],
    mmpp_off: Annotated[float, typer.Option(help="mmpp: mean off-period, s.")] = MMPP_DEFAULT[1],
    mmpp_off_ratio: Annotated[float, typer.Option(help="mmpp: off-state rate / on-state rate (0 = silent).")]
    = MMPP_DEFAULT[2],
    diurnal: Annotated[float | None, typer.Option(help="Amplitude A in [0,1] of a 24 h sinusoidal rate profile.")]
    = None,
    alpha: Annotated[float, typer.Option(help="Zipf exponent over (model, task) pairs, rank 1 = first in catalog.")]
    = 0.8,
    drift_every: Annotated[float | None, typer.Option(help="Rotate the popularity ranking every S seconds.")] = None,
    shuffle: Annotated[bool, typer.Option(help="Rank pairs in a seeded random order instead of catalog order.")]
    = False,
    catalog: CatalogOpt = None,
    seed: Annotated[int, typer.Option(help="Random seed, 0 to 2**64-1; same arguments and seed give the same file.")]
    = 0,
    force: Annotated[bool, typer.Option("--force", help="Write more than 1e9 requests (refused otherwise).")] = False,
    users: Annotated[int | None, typer.Option("--users", help="Add a `user` column: users user-0..user-(N-1), "
                                              "each request's drawn uniformly.")] = None,
    edges: Annotated[int | None, typer.Option("--edges", help="Add an `edge` column naming edge-0..edge-(N-1) (a "
                                              "scenario's `edges = N`): each user's home edge by the replay's user "
                                              "hash with --users, else drawn uniformly per request.")] = None,
) -> None:
    """Write a synthetic request trace (ts, model, task, units, input_mb) to Parquet.

    Example: pfmbench synth -o t.parquet --requests 100000 --rate 5 --alpha 0.8

    Example: pfmbench synth -o t.parquet --requests 20000 --users 500 --edges 3   # for several edge servers
    """
    if requests is None and duration is None:
        raise InputError("synth: give --requests N or --duration S")
    guard_outputs({"--output": output}, [catalog], parquet=["--output"])
    cat = load_catalog(catalog)
    kwargs = {"requests": requests, "duration": duration, "rate": rate, "arrivals": arrivals, "cv": cv,
              "mmpp": (mmpp_on, mmpp_off, mmpp_off_ratio), "diurnal": diurnal, "alpha": alpha,
              "drift_every": drift_every, "shuffle": shuffle, "seed": seed, "force": force}
    kwargs.update({k: v for k, v in {"users": users, "edges": edges}.items() if v is not None})
    check_args(cat, **kwargs)
    est = estimate_requests(requests, duration, rate)
    if est >= 1e6:
        print(f"synth: about {est:,.0f} requests, ~{est * BYTES_PER_REQUEST / 1e9:.2g} GB of Parquet",
              file=sys.stderr)
    with progress_bar("synth", requests if requests is not None else round(est)) as update:
        n = write_synth(output, cat, progress=update, **kwargs)
    print(f"wrote {n} requests to {'stdout' if output == '-' else output}", file=sys.stderr)
