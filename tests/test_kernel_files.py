"""The generated kernel modules: a group's kernels from older sources are removed with numba's cache files;
the generator's rules (engine/kernel.py's docstring) are followed, or a loop breaking one is refused naming
the line."""

import importlib.util
import inspect
import re
import sys

import numpy as np
import pytest

from pfmbench.engine import fast
from pfmbench.engine.kernel import _CALL, HOOKS, KernelSourceError, _prune, kernel_source
from pfmbench.policies import BUILTIN_GROUPS, builtin_modules, policy_names


def test_prune_keeps_only_this_kernel_of_the_group(tmp_path):
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    old = ["kernel_aaaaaa_111111111111.py", "__pycache__/kernel_aaaaaa_111111111111.replay-174.py311.nbi",
           "__pycache__/kernel_aaaaaa_111111111111.replay-174.py311.1.nbc"]
    keep = ["kernel_aaaaaa_222222222222.py", "__pycache__/kernel_aaaaaa_222222222222.replay-174.py311.nbi"]
    other_group = ["kernel_bbbbbb_111111111111.py", "__pycache__/kernel_bbbbbb_111111111111.replay-174.py311.nbi"]
    for f in old + keep + other_group:
        (tmp_path / f).write_text("")
    _prune(tmp_path, "kernel_aaaaaa_", "kernel_aaaaaa_222222222222.py")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("kernel_*")) == sorted(keep + other_group)


# -- the generator's rules (engine/kernel.py's docstring): followed, or refused naming the line -----------
HEADER = '''
import numpy as np
from pfmbench.engine.fast import admit  # noqa: F401  (a hook, as the loop calls it)

SCALE = 0.5
OFFSET = 3
NEGATE = True
WEIGHTS = [1.0, 2.0]
'''


def loop_module(tmp_path, name, body):
    """A module holding a loop `replay_requests` with the given body (indented 4), imported from a file."""
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + "\n\ndef replay_requests(code, tab, es, pss, rq, log_on, log):\n" + body)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod, path


@pytest.mark.parametrize("group", BUILTIN_GROUPS)
def test_every_hook_call_of_the_loop_becomes_a_switch(group):
    policy_names()
    modules = builtin_modules(group)
    text = kernel_source(modules)
    hooks_called = [m.group(3) for line in inspect.getsource(fast.replay_requests).splitlines()
                    if (m := _CALL.match(line))]
    assert sorted(set(hooks_called)) == sorted(HOOKS)  # the loop calls every hook
    assert not any(_CALL.match(line) for line in text.splitlines())  # none is left as written
    for hook in HOOKS:
        own = [i for i, mod in enumerate(modules) if hasattr(sys.modules[mod], hook)]
        for i in own:
            assert re.search(rf"code == {i}:\n\s+(\w+ = )?p{i}\.{hook}\(pss\[{i}\], ", text), (hook, i)
        if len(own) < len(modules):
            assert f"fast.{HOOKS[hook]}(pss[0], " in text


def test_float_int_and_bool_constants_are_carried_into_the_kernel(tmp_path):
    mod, _ = loop_module(tmp_path, "loop_consts", "    for i in range(rq.xs.shape[0]):\n"
                                                  "        v = rq.xs[i] * SCALE + OFFSET\n"
                                                  "        rq.out[i] = -v if NEGATE else v\n")
    text = kernel_source([], loop=mod.replay_requests)
    for name in ("SCALE", "OFFSET", "NEGATE"):
        assert f"{name} = fast.{name}" in text
    path = tmp_path / "kernel_consts.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("kernel_consts", path)
    kernel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernel)

    from typing import NamedTuple

    class Rq(NamedTuple):
        xs: np.ndarray
        out: np.ndarray

    rq = Rq(np.array([1.0, 2.0, 4.0]), np.zeros(3))
    kernel.replay(0, (), (), (), rq, False, ())
    np.testing.assert_array_equal(rq.out, -(rq.xs * 0.5 + 3))


@pytest.mark.parametrize("body, why", [
    ("    ok = admit(code, pss, es, tab,\n               0, 0.0)\n", "one statement on one line"),
    ("    if admit(code, pss, es, tab, 0, 0.0):\n        pass\n", "one statement on one line"),
    ("    x = admit(code, pss, es, tab, 0, 0.0) and admit(code, pss, es, tab, 1, 0.0)\n", "one statement on one line"),
    ("    f = admit\n", "one statement on one line"),
    ("    x = WEIGHTS[0]\n", "the global 'WEIGHTS', a list"),
    ("    x = np.float64(1.0)\n", "the global 'np', a module"),
    ("    x = UNDEFINED_NAME\n", "'UNDEFINED_NAME', which its module does not define"),
    ("    f = lambda x: x\n", "no nested function"),
])
def test_a_loop_breaking_a_rule_is_refused_naming_the_line(tmp_path, body, why):
    name = f"loop_bad_{abs(hash(body))}"
    mod, path = loop_module(tmp_path, name, body)
    with pytest.raises(KernelSourceError) as e:
        kernel_source([], loop=mod.replay_requests)
    msg = str(e.value)
    assert why in msg
    lineno = int(re.match(rf"{re.escape(str(path))}:(\d+): ", msg).group(1))
    assert path.read_text().splitlines()[lineno - 1].strip() in msg  # the line named is the line shown
    assert lineno > HEADER.count("\n") + 2  # a line of the loop's body


def test_the_kernel_without_the_options_paths_gives_the_same_bits():
    """A replay that uses none of MODEL.md §9's options runs the kernel compiled with ALL_OPTIONS = False
    (issue 18); the kernel with every path gives it the same results, bit for bit."""
    from pfmbench.api import resolve, scenario_trace
    from pfmbench.engine.fast import FastEngine
    from pfmbench.engine.tables import build_tables
    from pfmbench.policies import get_policy
    from pfmbench.trace.schema import read_trace

    sc, cat, _ = resolve(requests=3000)
    trace = read_trace(scenario_trace(sc, cat), cat)
    tables = build_tables(sc, cat)
    assert not tables.all_options
    assert build_tables(sc.with_overrides(substitute="before-cloud"), cat).all_options
    for name in ("lc", "lru", "gdsf", "belady"):
        policy = get_policy(name)
        lean = FastEngine(tables, policy, 0, account_thread=False)
        assert lean.kernel.ALL_OPTIONS is False
        full = FastEngine(tables, policy, 0, account_thread=False, all_options=True)
        assert full.kernel.ALL_OPTIONS is True
        nxt = None
        if policy.needs_next_use:
            from pfmbench.engine.fast import next_uses
            nxt = next_uses(tables.pair_model[trace.pair])
        for eng in (lean, full):
            eng.run(trace, None, nxt)
        for a, b in zip(lean.totals[:3], full.totals[:3]):
            np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))
