import pytest

from pfmbench.errors import InputError
from pfmbench.scenario import load_scenario


def test_defaults_and_overrides():
    sc = load_scenario()
    assert sc.edge.gpu_memory_gb == 80 and sc.catalog.copies_per_task
    sc2 = load_scenario(gpu_memory_gb=40, half_life_s=300, **{"cloud.tflops": 1000})
    assert sc2.edge.gpu_memory_gb == 40 and sc2.context.half_life_s == 300 and sc2.cloud.tflops == 1000
    assert sc.edge.gpu_memory_gb == 80  # overrides copy


def test_toml_round_trip(tmp_path):
    sc = load_scenario(gpu_memory_gb=33, utility="linear")
    p = tmp_path / "s.toml"
    p.write_text(sc.to_toml())
    back = load_scenario(p)
    assert back.edge.gpu_memory_gb == 33 and back.context.utility == "linear"
    assert {k: v for k, v in back.as_dict().items() if k not in ("name", "source")} == \
        {k: v for k, v in sc.as_dict().items() if k not in ("name", "source")}


@pytest.mark.parametrize("text,needle", [
    ("[edge]\ngpu_memory_gb = -1\n", "gpu_memory_gb"),
    ("[edge]\nbogus = 1\n", "unknown key 'bogus'"),
    ("[context]\nutility = \"cubic\"\n", "utility"),
    ("[edge]\ngpu_memory_gb = \"lots\"\n", "gpu_memory_gb"),
    ("[edge\n", "cannot read scenario"),
])
def test_bad_scenario(tmp_path, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(InputError, match=needle) as e:
        load_scenario(p)
    assert str(p) in str(e.value)


def test_unknown_override():
    with pytest.raises(InputError, match="unknown scenario key"):
        load_scenario(gpu_ram=3)


def test_edge_presets(tmp_path):
    sc = load_scenario(preset="l4")
    assert (sc.edge.gpu_memory_gb, sc.edge.tflops, sc.edge.power_w) == (24.0, 121.0, 72.0)
    # a single value beside a preset wins, whatever the order it is given in
    assert load_scenario(gpu_memory_gb=20, preset="L4").edge.gpu_memory_gb == 20
    p = tmp_path / "s.toml"
    p.write_text('[edge]\ngpu_memory_gb = 16\npreset = "rtx4090"\n')
    sc = load_scenario(p)
    assert (sc.edge.preset, sc.edge.gpu_memory_gb, sc.edge.tflops) == ("rtx4090", 16.0, 165.2)
    q = tmp_path / "round.toml"
    q.write_text(sc.to_toml())  # the preset name and the values that override it survive a round trip
    assert load_scenario(q).edge == sc.edge
    with pytest.raises(InputError, match="unknown edge preset 'v100'"):
        load_scenario(preset="v100")


@pytest.mark.parametrize("name", ["\U00010000 beyond U+FFFF", "a\x7fb", "tab\tquote\"back\\slash"])
def test_shown_toml_loads_back_with_any_text(cli, tmp_path, name):
    """`scenario show --toml` escapes a string as TOML does (json's surrogate pairs are not TOML)."""
    r = cli("scenario", "show", "--set", f"name={name}", "--toml")
    assert r.code == 0
    p = tmp_path / "s.toml"
    p.write_text(r.out, encoding="utf-8")
    assert load_scenario(p).name == name


def test_text_that_is_not_unicode_is_one_clean_error(cli):
    r = cli("scenario", "show", "--set", "name=a\udc80")  # undecodable bytes on a command line
    assert r.code == 2 and "not valid Unicode" in r.err and "Traceback" not in r.err
