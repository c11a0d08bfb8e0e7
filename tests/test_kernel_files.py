"""The generated kernel modules: a group's kernels from older sources are removed with numba's cache files."""

from pfmbench.engine.kernel import _prune


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
