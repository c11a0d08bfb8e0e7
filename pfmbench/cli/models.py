"""`pfmbench models`: the catalog with sizes, whether each model fits the GPU, and fitted accuracy curves."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ..api import resolve
from ..catalog import best_accuracy, catalog_template
from ..errors import InputError
from ..results import never_fit
from . import app
from .options import CatalogOpt, JsonOpt, ScenarioOpt
from .replay import parse_sets


def catalog_rows(sc, cat) -> list[dict]:
    """One dict per (model, task) of the catalog as replay sees it (per-task copies included)."""
    big = set(never_fit(sc, cat))
    rows = []
    for m in cat.models:
        for t in m.tasks:
            rows.append({
                "model": m.name, "family": m.family, "params_m": m.params_m, "precision": m.precision,
                "memory_gb": m.memory_gb, "fits_gpu": m.name not in big, "gflops": m.gflops,
                "accuracy_penalty": m.accuracy_penalty,  # points lost at its precision (MODEL.md §9.2)
                "context_window": m.context_window, "task": t.name,
                "curve": t.curve_label, "c": t.c, "alpha": t.alpha,
                "a0": t.accuracy(0), "a1": t.accuracy(1),
                "k_few": t.k_few, "a_k_few": t.accuracy(t.k_few) if t.k_few else None,
                "a_ref": best_accuracy(t, m.context_window),
                # a fine-tuned variant served as an adapter (catalog.variants = "adapter", MODEL.md §9.5)
                "base": m.variant_of or None, "adapter_mb": m.adapter_mb if m.variant_of else None,
            })
    return rows


@app.command()
def models(
    catalog: CatalogOpt = None,
    scenario: ScenarioOpt = None,
    copies_per_task: Annotated[bool | None, typer.Option("--copies-per-task/--shared-tasks",
                               help="One fine-tuned copy per LFM task (the default scenario's choice).")] = None,
    gpu: Annotated[str | None, typer.Option("--gpu", help="Edge GPU preset (for which models fit).")] = None,
    gpu_memory: Annotated[float | None, typer.Option("--gpu-memory", help="Edge GPU memory, GB.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Any scenario value, KEY=VALUE (repeatable).")]
    = None,
    json_out: JsonOpt = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column (family, parameters, precision, GFLOPs, "
                                       "window, curve); needs about 160 columns.")] = False,
    template: Annotated[bool, typer.Option("--template", help="Print a catalog template to start from "
                                           "(CSV, or TOML with --toml) and exit.")] = False,
    toml: Annotated[bool, typer.Option("--toml", help="With --template: the TOML form.")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="With --template: the CSV form (the default).")] = False,
) -> None:
    """List the catalog as replay sees it: memory, whether each model fits the GPU, and accuracy a(K) per task.

    Example: pfmbench models --catalog my_models.csv --gpu l4
    """
    if toml and csv:
        raise InputError("--toml and --csv: give one of them")
    if (toml or csv) and not template:
        raise InputError("--toml/--csv choose the form of --template")
    if template:
        # The template is fixed text: a listing option would be silently ignored (--json would print CSV).
        given = {"--catalog": catalog, "--scenario": scenario, "--copies-per-task/--shared-tasks": copies_per_task,
                 "--gpu": gpu, "--gpu-memory": gpu_memory, "--set": sets or None, "--json": json_out or None,
                 "--wide": wide or None}
        for name, value in given.items():
            if value is not None:
                raise InputError(f"--template prints a fixed catalog template: {name} does not apply to it")
        typer.echo(catalog_template("toml" if toml else "csv"), nl=False)
        return
    overrides = parse_sets(sets)
    overrides.update({k: v for k, v in {"copies_per_task": copies_per_task, "preset": gpu,
                                         "gpu_memory_gb": gpu_memory}.items() if v is not None})
    sc, cat, _ = resolve(scenario, str(catalog) if catalog else None, **overrides)
    rows = catalog_rows(sc, cat)
    big = never_fit(sc, cat)
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    copies = " · one fine-tuned copy per LFM task (--shared-tasks: one model for all its tasks)" \
        if sc.catalog.copies_per_task else ""
    if sc.catalog.variants == "adapter" and any(m.variant_of for m in cat.models):
        copies += " · variants as adapters on a shared base (catalog.variants)"
    title = (f"catalog {cat.source} · {len(cat.models)} models · {len(rows)} (model, task) pairs{copies} · "
             f"GPU {sc.edge.gpu_memory_gb:g} GB")
    console = Console(width=200) if wide and not sys.stdout.isatty() else Console()
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True,
                  caption="accuracies a(K) in %, with K examples in context; a_ref: the best, what the cloud serves; "
                          "-acc.: points lost at the model's precision (served a(K) minus it)",
                  caption_justify="left")
    if wide:
        cols = [("model", "left"), ("fits", "left"), ("GB", "right"), ("family", "left"), ("params (M)", "right"),
                ("prec.", "left"), ("-acc.", "right"), ("GFLOP/unit", "right"), ("window", "right"), ("task", "left"), ("a(0)", "right"),
                ("a(1)", "right"), ("a(k_few)", "right"), ("a_ref", "right"), ("accuracy curve", "left")]
    else:
        cols = [("model / task", "left"), ("fits", "left"), ("GB", "right"), ("-acc.", "right"), ("a(0)", "right"),
                ("a(1)", "right"),
                ("a(k_few)", "right"), ("a_ref", "right")]
    for col, just in cols:
        table.add_column(col, justify=just, overflow="fold")
    # On a narrow terminal a long `model/task` name breaks after its slash, never mid-word.
    narrow = console.width < 120
    split = (lambda n: n.replace("/", "/\n", 1) if narrow and len(n) > 22 and "/" in n else n)
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    for name, rs in by_model.items():
        r0 = rs[0]
        fits, gb = ("yes" if r0["fits_gpu"] else "NEVER"), f"{r0['memory_gb']:.1f}"
        pen = f"{r0['accuracy_penalty']:g}"  # points lost at its precision
        if r0["base"]:  # its own memory is its adapter's; the base's weights are shared
            gb = f"+{r0['adapter_mb']:.1f} MB"
        for i, r in enumerate(rs):
            acc = [f"{r['a0']:.2f}", f"{r['a1']:.2f}", f"{r['a_k_few']:.2f} @{r['k_few']:g}" if r["k_few"] else "-",
                   f"{r['a_ref']:.2f}"]
            if wide:
                first = i == 0
                table.add_row(name if first else "", fits if first else "", gb if first else "",
                              r["family"] if first else "", f"{r['params_m']:,.0f}" if first else "",
                              r["precision"] if first else "", pen if first else "", f"{r['gflops']:g}" if first else "",
                              f"{r['context_window']:g}" if first else "", r["task"], *acc, r["curve"])
            elif len(rs) == 1:  # the task is in the name (a per-task copy) or the model's only task
                label = name if name.lower().endswith("/" + r["task"].lower()) else f"{name} · {r['task']}"
                table.add_row(split(label), fits, gb, pen, *acc)
            else:
                if i == 0:
                    table.add_row(name, fits, gb, pen, "", "", "", "")
                table.add_row(f"  {r['task']}", "", "", "", *acc)
    console.print(table)
    bases = {}
    for m in cat.models:
        if m.variant_of:
            bases.setdefault(m.variant_of, []).append(m)
    for b, vs in bases.items():
        size = cat.find(b).memory_gb
        mb = sorted({round(v.adapter_mb, 1) for v in vs})
        each = f"{mb[0]:g}" if len(mb) == 1 else f"{mb[0]:g} to {mb[-1]:g}"
        console.print(f"variants as adapters: {len(vs)} variant(s) of {b} share its {size:.1f} GB of weights, loaded "
                      f"once; each adapter takes {each} "
                      f"MB (LoRA rank {sc.catalog.adapter_rank} on the attention projections where the catalog gives "
                      f"no adapter_mb) and loads in {sc.edge.adapter_overhead_s:g} s + its bytes at "
                      f"{sc.edge.load_gbps:g} GB/s (docs/catalogs.md, \"Variants\")", highlight=False)
    if big:
        console.print(f"note: {len(big)} model(s) can never fit the {sc.edge.gpu_memory_gb:g} GB GPU; their requests "
                      f"always go to the cloud: {', '.join(big)}", highlight=False)
    for w in cat.warnings:
        console.print(f"warning: {w}", highlight=False)
    if not wide:
        console.print("More columns (family, parameters, GFLOP/unit, window, the fitted curve's c and α): --wide; "
                      "machine-readable: --json", highlight=False)
