"""Scenarios: the edge server, the cloud, the context model, cost weights and the catalog (MODEL.md §2–4).

Every value is a typed field with a documented default and its source. A scenario comes from the
built-in default, a TOML file (sections [edge], [cloud], [context], [weights], [serving], [catalog], [trace], [run],
[device]), and overrides by key name (`gpu_memory_gb=40`, `half_life_s=300`, or `cloud.tflops=...`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from .catalog import BYTES_PER_PARAM, Catalog, load_catalog
from .errors import InputError, shown
from .fileio import read_toml, require_file
from .scenario_sections import (  # re-exported: pfmbench.scenario is where callers find them
    ADMISSIONS,
    BOUNDS,
    CACHINGS,
    CHECKPOINT_TIERS,
    COOPERATIONS,
    DISPATCHES,
    EDGE_PRESETS,
    MAX_EDGES,
    MAX_SEED,
    PRECISION_MODES,
    SUBSTITUTES,
    TOTAL_EDGE,
    UTILITIES,
    VARIANTS,
    CatalogSpec,
    Cloud,
    Context,
    Device,
    Edge,
    EdgeSite,
    Run,
    Serving,
    TraceSpec,
    Weights,
    apply_preset,
)


@dataclass
class Scenario:
    name: str = "default"
    edge: Edge = field(default_factory=Edge)
    cloud: Cloud = field(default_factory=Cloud)
    context: Context = field(default_factory=Context)
    weights: Weights = field(default_factory=Weights)
    serving: Serving = field(default_factory=Serving)
    catalog: CatalogSpec = field(default_factory=CatalogSpec)
    trace: TraceSpec = field(default_factory=TraceSpec)
    run: Run = field(default_factory=Run)
    device: Device = field(default_factory=Device)
    seed: int = 0  # seeds the `random` policy
    source: str = "built-in"
    # Several edge servers (MODEL.md §9.4; docs/edges in README): none = one edge, the [edge] section, as always.
    edges: tuple = ()  # EdgeSite, in the order given
    cooperation: str = "none"  # none: each edge alone; forward: a miss may be served by a neighbour holding the model
    # forward's extra latency between two edges (a metro network's round trip; docs/model.md, "Several edge servers")
    edge_rtt_s: float = 0.002

    SECTIONS = ("edge", "cloud", "context", "weights", "serving", "catalog", "trace", "run", "device")

    def validate(self) -> Scenario:
        """Check every value's type and bounds (BOUNDS): finite, physically sensible, every cost finite."""
        where = _where(self)

        def need(ok, key, what):
            if not ok:
                raise InputError(f"{where}: {key} must be {what}")

        for sect in self.SECTIONS:
            obj = getattr(self, sect)
            for f in fields(obj):
                v = getattr(obj, f.name)
                kind = _field_type(sect, f.name)
                key = f"{sect}.{f.name}"
                need(kind is not float or (isinstance(v, (int, float)) and not isinstance(v, bool)), key, "a number")
                need(kind is not int or (isinstance(v, int) and not isinstance(v, bool)), key, "a whole number")
                need(kind is not bool or isinstance(v, bool), key, "true or false")
                need(kind is not str or isinstance(v, str), key, "a string")
                if (sect, f.name) in BOUNDS:
                    lo, hi = BOUNDS[sect, f.name]
                    # compared as given (NaN and ±inf fail too): float(v) of a 400-digit integer would raise
                    need(lo <= v <= hi, key,
                         f"{_range(lo, hi, kind)}, got {shown(v)}")
        need(isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed <= MAX_SEED, "seed",
             f"a whole number from 0 to 2**64-1, got {shown(self.seed)}")
        need(self.edge.preset in EDGE_PRESETS, "edge.preset", f"one of {', '.join(EDGE_PRESETS)}")
        need(self.context.utility in UTILITIES, "context.utility", f"one of {', '.join(UTILITIES)}")
        need(self.catalog.precision in BYTES_PER_PARAM, "catalog.precision", f"one of {', '.join(BYTES_PER_PARAM)}")
        need(bool(self.catalog.path.strip()), "catalog.path", "a file name or table1")
        need(self.catalog.variants in VARIANTS, "catalog.variants",
             f"one of {', '.join(VARIANTS)}, not {self.catalog.variants!r}")
        need(self.serving.admission in ADMISSIONS, "serving.admission",
             f"one of {', '.join(ADMISSIONS)}, not {self.serving.admission!r}")
        need(self.serving.dispatch in DISPATCHES, "serving.dispatch",
             f"one of {', '.join(DISPATCHES)}, not {self.serving.dispatch!r}")
        need(self.serving.substitute in SUBSTITUTES, "serving.substitute",
             f"one of {', '.join(SUBSTITUTES)}, not {self.serving.substitute!r}")
        need(self.serving.precision_mode in PRECISION_MODES, "serving.precision_mode",
             f"one of {', '.join(PRECISION_MODES)}, not {self.serving.precision_mode!r}")
        need(all(p.strip() in BYTES_PER_PARAM for p in self.catalog.ladder.split(",") if p.strip()), "catalog.ladder",
             f"precisions from {', '.join(BYTES_PER_PARAM)}, comma-separated, not {self.catalog.ladder!r}")
        need(self.serving.caching in CACHINGS, "serving.caching",
             f"one of {', '.join(CACHINGS)}, not {self.serving.caching!r}")
        if self.serving.caching == "partial" and self.serving.precision_mode == "ladder":
            raise InputError(f"{where}: serving.caching = 'partial' with precision_mode = 'ladder' is not supported "
                             "(a copy is either a prefix or a lower precision); choose one")
        need(self.edge.checkpoints_in in CHECKPOINT_TIERS, "edge.checkpoints_in",
             f"one of {', '.join(CHECKPOINT_TIERS)}, not {self.edge.checkpoints_in!r}")
        if self.edge.checkpoints_in != "dram" and self.catalog.variants == "adapter":
            raise InputError(f"{where}: edge.checkpoints_in = {self.edge.checkpoints_in!r} with catalog.variants = "
                             "'adapter' is not supported (a base and its adapter are separate checkpoints that may sit "
                             "in different tiers); use variants = 'full' or checkpoints_in = 'dram'")
        need(self.cooperation in COOPERATIONS, "cooperation", f"one of {', '.join(COOPERATIONS)}, not "
             f"{self.cooperation!r}")
        need(isinstance(self.edge_rtt_s, float) and 0.0 <= self.edge_rtt_s <= 1e6, "edge_rtt_s",
             f"a number from 0 to 1e+06 (seconds), got {shown(self.edge_rtt_s)}")
        for site in self.edges:
            self.edge_scenario(site)  # each edge's values in bounds, named by its edge
        return self

    def edge_scenario(self, site: EdgeSite) -> Scenario:
        """The one-edge scenario of edge `site`: this scenario with the site's keys applied over [edge]."""
        sc = dataclasses.replace(self, edge=dataclasses.replace(self.edge), edges=())
        sc.source = f"{_where(self)}: [[edges]] {site.name}"
        for k, v in site.keys:
            _set(sc, "edge", k, v, f"edge.{k}")
        if site.keys:
            sc.validate()  # its errors name the edge
        sc.source = self.source
        return sc

    # -- derived -------------------------------------------------------------------------------
    @property
    def edge_rate(self) -> float:
        """R_edge, GFLOP/s."""
        return self.edge.tflops * 1000.0 * self.edge.utilization

    @property
    def cloud_rate(self) -> float:
        """R_cloud, GFLOP/s."""
        return self.cloud.tflops * 1000.0 * self.cloud.utilization

    @property
    def device_rate(self) -> float:
        """R_device, GFLOP/s (MODEL.md §9.4)."""
        return self.device.tflops * 1000.0 * self.device.utilization

    def load_catalog(self) -> Catalog:
        cat = load_catalog(self.catalog.path, runtime_overhead=self.catalog.runtime_overhead,
                           precision=self.catalog.precision)
        adapters = self.catalog.variants == "adapter"
        if self.catalog.copies_per_task:
            cat = cat.with_task_copies(adapters=adapters, rank=self.catalog.adapter_rank)
        return cat.with_default_adapters(self.catalog.adapter_rank) if adapters else cat.as_full_copies()

    def as_dict(self) -> dict:
        """Flat {section.key: value} of every setting, for results and `scenario show`."""
        out = {"name": self.name, "source": self.source, "seed": self.seed}
        for s in self.SECTIONS:
            for k, v in dataclasses.asdict(getattr(self, s)).items():
                out[f"{s}.{k}"] = v
        return out

    def to_toml(self) -> str:
        lines = [f"name = {_toml_value(self.name)}", f"seed = {self.seed}"]
        if self.edges:
            lines.append(f"cooperation = {_toml_value(self.cooperation)}")
            lines.append(f"edge_rtt_s = {_toml_value(self.edge_rtt_s)}")
        for s in self.SECTIONS:
            lines.append(f"\n[{s}]")
            for k, v in dataclasses.asdict(getattr(self, s)).items():
                lines.append(f"{k} = {_toml_value(v)}")
        for site in self.edges:
            lines.append("\n[[edges]]")
            lines.append(f"name = {_toml_value(site.name)}")
            lines += [f"{k} = {_toml_value(v)}" for k, v in site.keys]
        return "\n".join(lines) + "\n"

    # -- changing values ------------------------------------------------------------------------
    def with_overrides(self, **overrides) -> Scenario:
        """A copy with values set by key: `gpu_memory_gb`, `cloud.tflops` or `cloud_tflops`, `seed`.

        A bare key must be unique across sections (`tflops` is not: say edge.tflops or cloud.tflops).
        String values (from `--set`) are parsed to the key's type; other values must already have it.
        """
        sc = dataclasses.replace(self, **{s: dataclasses.replace(getattr(self, s)) for s in self.SECTIONS})
        resolved = [(resolve_key(key), value) for key, value in overrides.items() if value is not None]
        # A preset sets several edge values: apply it before any single value, whatever the order given.
        resolved.sort(key=lambda kv: kv[0] != ("edge", "preset"))
        for (sect, name), value in resolved:
            if sect == "":
                _set_top(sc, name, value, name)
            else:
                _set(sc, sect, name, value, f"{sect}.{name}")
        return sc.validate()




def _range(lo, hi, kind) -> str:
    what = "a whole number" if kind is int else "a number"
    fmt = (lambda v: "2**64-1" if v == MAX_SEED else f"{v:g}") if kind is int else (lambda v: f"{v:g}")
    return f"{what} from {fmt(lo)} to {fmt(hi)}"


def _field_type(sect: str, name: str) -> type:
    """The declared type of a scenario field (from its default value)."""
    return type(getattr(getattr(Scenario(), sect), name))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        # A TOML basic string: quotes, backslashes and control characters escaped. Not json's \uD800\uDC00
        # pairs for characters beyond U+FFFF, which TOML rejects: those are written as themselves.
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    return repr(v)


# Short names the commands' own options use (--warmup, --warmup-s), so that --set, a sweep axis and a
# calibrated key can say them too.
# `power_w` stays the edge's, as before [device] had one (say device.power_w for the device's).
KEY_ALIASES = {"warmup": ("run", "warmup_requests"), "w_device_energy": ("weights", "device_energy"),
               "power_w": ("edge", "power_w")}
TOP_KEYS = ("seed", "name", "cooperation", "edges", "edge_rtt_s")  # top-level keys: bare `seed` is the scenario's (random
#                                                       policy) seed; `edges = N`: N identical edge servers


def _key_index() -> tuple[dict[str, tuple[str, str]], dict[str, list[str]]]:
    """({key: (section, name)} by `section.key`, `section_key` and bare `key` where unique across sections,
    {ambiguous bare key: [section.key, ...]})."""
    index, counts = {}, {}
    proto = Scenario()
    for s in Scenario.SECTIONS:
        for f in fields(getattr(proto, s)):
            index[f"{s}.{f.name}"] = index[f"{s}_{f.name}"] = (s, f.name)
            counts.setdefault(f.name, []).append(s)
    ambiguous = {}
    for name, sects in counts.items():
        if name in TOP_KEYS:
            continue
        if len(sects) == 1:
            index[name] = (sects[0], name)
        else:
            ambiguous[name] = [f"{s}.{name}" for s in sects]
    for k in TOP_KEYS:
        index[k] = ("", k)
    index.update(KEY_ALIASES)
    return index, ambiguous


def resolve_key(key: str) -> tuple[str, str]:
    """(section, name) of a scenario key; section "" for a top-level key. InputError for unknown/ambiguous keys."""
    index, ambiguous = _key_index()
    k = str(key).strip()
    if k in index:
        return index[k]
    if k in ambiguous:
        raise InputError(f"ambiguous scenario key {k!r}: say {' or '.join(ambiguous[k])}")
    import difflib

    close = difflib.get_close_matches(k, [x for x in index if "_" not in x or "." in x] + list(ambiguous), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise InputError(f"unknown scenario key {k!r}{hint} (see `pfmbench scenario show`)")


def parse_value(kind: type, value, where: str, *, strict: bool = False):
    """`value` as `kind`. A string (from --set or the API) is parsed; with strict (TOML) it must have the type."""
    if kind is str:
        if not isinstance(value, str):
            raise InputError(f"{where}: expected a string, got {shown(value)}")
        try:  # a lone surrogate (undecodable bytes on the command line) has no TOML or JSON form
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"{where}: not valid Unicode text: {value!r}") from None
        return value
    if isinstance(value, str) and not strict:
        text = value.strip()
        try:
            if kind is bool:
                low = text.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return low in ("true", "1", "yes")
            if kind is int:
                try:
                    return int(text)
                except ValueError:
                    f = float(text)  # 1e3 or 7.0: a whole number written as a float
                    if not (math.isfinite(f) and f.is_integer()):
                        raise
                    return int(f)
            return float(text)
        except ValueError:
            want = {bool: "true or false", int: "a whole number", float: "a number"}[kind]
            raise InputError(f"{where}: expected {want}, got {shown(value)}") from None
    if kind is bool:
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        want = "a whole number" if kind is int else "a number"
        raise InputError(f"{where}: expected {want}, got {shown(value)}")
    if kind is int:
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise InputError(f"{where}: expected a whole number, got {shown(value)}")
        return int(value)
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise InputError(f"{where}: expected a number, got {shown(value)}: too large") from None


def _set(sc: Scenario, sect: str, name: str, value, where: str, strict: bool = False) -> None:
    obj = getattr(sc, sect)
    if (sect, name) == ("edge", "preset"):
        apply_preset(obj, parse_value(str, value, f"{_where(sc)}: {where}", strict=strict), f"{_where(sc)}: {where}")
        return
    setattr(obj, name, parse_value(_field_type(sect, name), value, f"{_where(sc)}: {where}", strict=strict))


def _where(sc: Scenario) -> str:
    return f"scenario {sc.name}" if sc.source == "built-in" else sc.source


def default_scenario() -> Scenario:
    """The built-in default scenario, calibrated as docs/model.md explains (MODEL.md §7).

    Table I at fp16 with one fine-tuned GPT-3 copy per task, on one 80 GB GPU: it holds two of the
    three GPT3-13B copies (30.8 GB each) beside the vision models, so the policies differ.
    """
    sc = Scenario(name="default")
    sc.catalog.copies_per_task = True
    return sc.validate()


SCENARIOS = {"default": default_scenario}


def load_scenario(path: str | Path | None = None, **overrides) -> Scenario:
    """A built-in scenario by name (None = 'default') or a TOML file, then overrides by key."""
    if path is None or str(path) in SCENARIOS:
        sc = SCENARIOS[str(path or "default")]()
    else:
        p = Path(path)
        require_file(p, "scenario", f"{p}: scenario file not found (built-in scenarios: {', '.join(SCENARIOS)})")
        doc = read_toml(p, "scenario")
        sc = default_scenario()
        sc.source, sc.name = str(p), p.stem
        for key, value in doc.items():
            if key in Scenario.SECTIONS:
                if not isinstance(value, dict):
                    raise InputError(f"{p}: [{key}] must be a table")
                for k, v in sorted(value.items(), key=lambda kv: kv[0] != "preset"):  # a preset first
                    if k not in {f.name for f in fields(getattr(sc, key))}:
                        raise InputError(f"{p}: [{key}] has unknown key {k!r} (one of "
                                         f"{', '.join(f.name for f in fields(getattr(sc, key)))})")
                    _set(sc, key, k, v, f"[{key}] {k}", strict=True)
            elif key == "edges" and isinstance(value, list):
                sc.edges = parse_edges(value, str(p))
            elif key in TOP_KEYS:
                _set_top(sc, key, value, key, strict=True)
            else:
                raise InputError(f"{p}: unknown key or section {key!r} (sections: {', '.join(Scenario.SECTIONS)}; "
                                 f"top-level keys: {', '.join(TOP_KEYS)})")
        if not sc.catalog.path.strip():  # else it would become the scenario's folder ("is a directory")
            raise InputError(f"{p}: [catalog] path is empty: give a catalog file (CSV or TOML, relative to this "
                             "scenario file) or table1, or leave the key out")
        if sc.catalog.path != "table1" and not Path(sc.catalog.path).is_absolute():
            # A catalog path in a scenario file is relative to that file.
            sc.catalog.path = str(p.parent / sc.catalog.path)
        sc.validate()
    return sc.with_overrides(**overrides) if overrides else sc


def _set_top(sc: Scenario, key: str, value, where: str, strict: bool = False) -> None:
    kind = int if key in ("seed", "edges") else float if key == "edge_rtt_s" else str
    value = parse_value(kind, value, f"{_where(sc)}: {where}", strict=strict)
    if key == "edges":  # N identical edge servers edge-0 .. edge-(N-1), each the [edge] section; 0: one edge
        if not 0 <= value <= MAX_EDGES:
            raise InputError(f"{_where(sc)}: {where} must be a whole number from 0 to {MAX_EDGES}, got {shown(value)}")
        if any(site.keys for site in sc.edges):
            raise InputError(f"{_where(sc)}: {where}: the scenario lists its own [[edges]] with keys of their own; "
                             "edges = N would replace them (sweep their memory through [edge] keys instead)")
        value = tuple(EdgeSite(f"edge-{i}") for i in range(value))
    setattr(sc, key, value)


def parse_edges(items: list, src: str) -> tuple:
    """`[[edges]]` of a scenario file: each a `name` and any [edge] key; one line naming the edge on error."""
    if not 1 <= len(items) <= MAX_EDGES:
        raise InputError(f"{src}: [[edges]] must list 1 to {MAX_EDGES} edge servers, got {len(items)}")
    allowed = [f.name for f in fields(Edge)]
    sites, seen = [], set()
    for i, item in enumerate(items):
        where = f"{src}: [[edges]] {i + 1}"
        if not isinstance(item, dict):
            raise InputError(f"{where} must be a table (name = ..., and [edge] keys)")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where} needs a name (a non-empty string)")
        parse_value(str, name, f"{where}: name")
        if name.lower() == TOTAL_EDGE:
            raise InputError(f"{where}: name {name!r} is reserved for the rows that add up every edge")
        if name in seen:
            raise InputError(f"{where}: name {name!r} is given twice")
        seen.add(name)
        where = f"{src}: [[edges]] {name}"
        keys = []
        for k, v in sorted(item.items(), key=lambda kv: kv[0] != "preset"):  # a preset first
            if k == "name":
                continue
            if k not in allowed:
                raise InputError(f"{where}: unknown key {k!r} (name, or an [edge] key: {', '.join(allowed)})")
            keys.append((k, parse_value(_field_type("edge", k), v, f"{where}: {k}", strict=True)))
        sites.append(EdgeSite(name, tuple(keys)))
    return tuple(sites)
