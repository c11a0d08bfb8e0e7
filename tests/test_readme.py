"""The README's examples run as written from the project root: every `pfmbench ...` line of its bash
blocks (in order, so that files made by one are used by the next) and its Python API block."""

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PUBLIC_TRACES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_commands() -> list[str]:
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("pip install"):
                continue  # installing is not ours to test here
            if line.startswith("pfmbench"):
                cmds.append(line)
    return cmds


@pytest.fixture
def project(tmp_path):
    """A copy of the project root's data (traces, policies, reports), with the public traces in downloads/."""
    proj = tmp_path / "project"
    proj.mkdir()
    for d in ("traces", "policies"):
        shutil.copytree(ROOT / d, proj / d)
    (proj / "reports").mkdir()
    for f in [*(ROOT / "reports").glob("*.toml"), *(ROOT / "reports").glob("baseline*.parquet")]:
        shutil.copy(f, proj / "reports" / f.name)  # the sweep files and the baseline the README runs
    # The README reads the public traces from downloads/ (docs/traces.md says where to get them): the full
    # files where this machine has them, else the committed samples of their first rows.
    full = PUBLIC_TRACES
    (proj / "downloads").symlink_to(full if full.is_dir() else ROOT / "tests" / "data")
    return proj


def run_line(cmd: str, capsysbinary) -> None:
    """Run one README line in-process (main(), as the `pfmbench` script does); a pipe's reader and a `>`
    redirection are done as the shell would."""
    from pfmbench.cli import main

    lex = shlex.shlex(cmd, posix=True, punctuation_chars="|>")
    lex.whitespace_split, lex.commenters = True, "#"
    tokens = list(lex)
    args, target, reader = tokens, None, None
    if "|" in tokens:
        i = tokens.index("|")
        args, reader = tokens[:i], shlex.join(tokens[i + 1:])
    if ">" in args:
        i = args.index(">")
        args, target = args[:i], args[i + 1]
    code = 0
    try:
        main(args[1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsysbinary.readouterr()
    assert code == 0, f"{cmd}\n{err.decode()}"
    assert b"Traceback" not in err, cmd
    if target:
        Path(target).write_bytes(out)
    if reader:
        if reader.split()[0] == "jq" and shutil.which("jq") is None:
            return
        p = subprocess.run(["bash", "-c", reader], check=False, input=out, capture_output=True, timeout=60)
        assert p.returncode == 0, f"{cmd}\n{p.stderr.decode()}"


def test_readme_has_examples():
    cmds = readme_commands()
    assert len(cmds) >= 20
    assert any(c.startswith("pfmbench import alibaba-genai") for c in cmds)


def test_readme_commands_run_from_the_project_root(project, monkeypatch, capsysbinary):
    monkeypatch.chdir(project)
    ran = []
    for cmd in readme_commands():
        run_line(cmd, capsysbinary)
        ran.append(cmd)
    assert len(ran) >= 15


def test_readme_python_block_runs(project, monkeypatch):
    monkeypatch.chdir(project)
    code = re.search(r"## Python API\n\n```python\n(.*?)```", README, re.DOTALL).group(1)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102  (the README is ours)
