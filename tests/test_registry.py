"""The registry is the one list of policies: every built-in has fast hooks whatever the order its module
defines them in, a built-in without them is refused loudly, and every hand-written list of policies (the
docs' table, the README's policy section, the oracle list) names exactly the registered built-ins."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from pfmbench import policies as P
from pfmbench.policies import BUILTINS, REGISTRY, BuiltinPolicyError, builtin_names, check_builtin, get_policy

ROOT = Path(__file__).resolve().parent.parent


# -- fast hooks: every built-in, whatever the order of its module ---------------------------------------
def test_every_builtin_has_fast_hooks():
    names = builtin_names()
    assert len(names) == len(BUILTINS)  # one registered policy per module
    for name in names:
        cls = REGISTRY[name]
        assert cls.fast in BUILTINS and cls.__module__ == f"pfmbench.policies.{cls.fast}", name
        assert get_policy(name).fast == cls.fast


def test_the_differential_test_covers_every_builtin():
    from test_engines import POLICIES

    assert sorted(POLICIES) == sorted(builtin_names())


def test_kernel_and_registry_name_the_same_hooks():
    from pfmbench.engine.kernel import HOOKS

    assert set(HOOKS) == set(P.FAST_HOOKS)


WRONG_ORDER = '''
from typing import NamedTuple
from numba import njit
from pfmbench.policies import Policy, register


@register
class WrongOrder(Policy):
    """Defined before its hooks."""

    name = "{name}"

    def key(self, entry, now):
        return entry.last_use


class State(NamedTuple):
    nothing: int


def new_state(tables, seed):
    return State(0)
{extra}
'''


@pytest.fixture
def fake_builtin(monkeypatch, tmp_path):
    """Make a module pfmbench.policies.<short> from source (a file, imported), listed in BUILTINS; undone
    afterwards."""

    def make(short, source):
        name = f"pfmbench.policies.{short}"
        path = tmp_path / f"{short}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, mod)
        monkeypatch.setattr(P, "BUILTINS", (*P.BUILTINS, short))
        monkeypatch.setattr(P, "REGISTRY", dict(P.REGISTRY))  # registrations below leave the real one as it was
        spec.loader.exec_module(mod)
        return name, mod

    return make


def test_a_class_defined_before_its_hooks_still_runs_fast(fake_builtin):
    name, mod = fake_builtin("fake_wrong_order", WRONG_ORDER.format(name="fake-wrong-order", extra=""))
    assert mod.WrongOrder.fast == "fake_wrong_order"
    assert check_builtin(name) == [mod.WrongOrder]


def test_a_builtin_without_new_state_is_refused_loudly(fake_builtin):
    src = WRONG_ORDER.format(name="fake-no-state", extra="del new_state")
    name, _ = fake_builtin("fake_no_state", src)
    with pytest.raises(BuiltinPolicyError, match=r"pfmbench\.policies\.fake_no_state .*no new_state"):
        check_builtin(name)


def test_a_hook_that_is_not_compiled_is_refused_loudly(fake_builtin):
    src = WRONG_ORDER.format(name="fake-plain-hook", extra="\ndef victim(ps, es, tab, now):\n    return -1\n")
    name, _ = fake_builtin("fake_plain_hook", src)
    with pytest.raises(BuiltinPolicyError, match=r"fake_plain_hook.*victim is a function, not a numba function"):
        check_builtin(name)


def test_a_builtin_module_that_registers_nothing_is_refused(fake_builtin):
    name, _ = fake_builtin("fake_empty", "def new_state(tables, seed):\n    return ()\n")
    with pytest.raises(BuiltinPolicyError, match="registers no policy"):
        check_builtin(name)


def test_a_drop_in_subclass_of_a_builtin_runs_on_the_reference_engine():
    class MyLRU(REGISTRY["lru"]):
        name = "my-lru"

    assert MyLRU.fast is None and REGISTRY["lru"].fast == "lru"


def test_the_reference_policy_has_every_fast_hook_by_name():
    # one contract: the reference engine calls each Policy method where the fast loop calls the hook of that name
    assert all(callable(getattr(P.Policy, hook, None)) for hook in P.FAST_HOOKS)


def test_a_policy_defining_the_old_on_drop_is_refused():
    with pytest.raises(TypeError, match="on_drop is now on_evict"):
        class Drops(P.Policy):
            def on_drop(self, entry, now):
                pass


def test_a_policy_cannot_claim_fast_hooks():
    with pytest.raises(TypeError, match="`fast` is set by pfmbench.policies"):
        class Claims(P.Policy):
            fast = "lru"


# -- hand-written lists: each names exactly the registered built-ins --------------------------------------
def section(text: str, heading: str) -> str:
    """The text under a markdown heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(text, start + len(heading))
    return text[start:end.start() if end else len(text)]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the markdown tables in text."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-:| ]+\|$", line):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return [r for r in rows if r[0] not in ("name", "policy")]  # the header rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_docs_table_lists_every_builtin_and_nothing_else():
    rows = table_rows(section((ROOT / "docs/engine.md").read_text(), "## Built-in policies"))
    listed = [n for r in rows for n in ticked(r[0])]
    assert sorted(listed) == sorted(builtin_names())
    modules = [m.removesuffix(".py") for r in rows for m in ticked(r[1])]
    assert sorted(modules) == sorted(BUILTINS)


def test_the_readme_names_every_builtin_and_no_unregistered_policy():
    text = section((ROOT / "README.md").read_text(), "## Policies")
    prose, _, measured = text.partition("**Every policy, measured**")
    for name in builtin_names():
        assert f"`{name}`" in prose, f"README.md's Policies section does not name the built-in {name!r}"
    described = [n for r in table_rows(prose) for n in ticked(r[0])]
    assert set(described) <= set(REGISTRY), set(described) - set(REGISTRY)
    measured = [r[0] for r in table_rows(measured)]
    assert set(measured) <= {*REGISTRY, "opt"}, set(measured) - {*REGISTRY, "opt"}


def test_the_readmes_measured_table_has_a_row_per_builtin():
    text = section((ROOT / "README.md").read_text(), "## Policies")
    rows = [r[0] for r in table_rows(text.partition("**Every policy, measured**")[2])]
    assert sorted(rows) == sorted([*builtin_names(), "opt"])


def test_the_oracle_list_matches_the_docs():
    """tests/test_oracle.py compares exactly the policies the docs say have a libCacheSim oracle."""
    pytest.importorskip("libcachesim")
    from test_oracle import ORACLES

    rows = table_rows(section((ROOT / "docs/engine.md").read_text(), "## Built-in policies"))
    in_docs = {n for r in rows if "libCacheSim" in r[3] for n in ticked(r[0])}
    assert set(ORACLES) <= set(REGISTRY)
    assert set(ORACLES) == in_docs
