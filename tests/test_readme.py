"""The README's examples run as written: every `musiclstm ...` line in its code blocks goes through `cli.main`, in
README order, in a fresh folder holding only the shipped example files, and must exit 0 and write what it says.

To stay fast, flags are appended (argparse keeps the last value given) that shorten the work: fewer steps, files
and epochs, no audio. The command line itself is the README's, so a stale example fails here. `demo`,
`listen serve` and `live --page` start servers that never end: they are checked with `--help`.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
from pathlib import Path

import pytest

from musiclstm.cli import build_parser, main

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
EXAMPLES = Path("src/musiclstm/examples")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), flags=re.M | re.S)
COMMANDS = [
    shlex.split(line, comments=True)[1:]
    for language, block in BLOCKS
    if language != "python"
    for line in block.splitlines()
    if line.startswith("musiclstm ")
]
PYTHON_BLOCKS = [block for language, block in BLOCKS if language == "python"]
SERVERS = {("demo",), ("listen", "serve"), ("live", "--page")}
SHORTER = {  # the command (and step): flags appended to make it quick
    "data": ["--limit", "10"],
    "train": ["--preset", "small", "--epochs", "1"],
    "generate": ["--length", "32", "--num-outputs", "1", "--no-audio"],
    "harmonize": ["--length", "32", "--no-audio"],
    "infill": ["--no-audio", "--particles", "2"],
    "listen prepare": ["--pieces", "2", "--bars", "2"],
    "live": ["--speed", "16"],
}
WRITES_INSIDE_OUT = {  # the command: a file it writes inside its --out folder
    "data": "manifest.json",
    "train": "model.safetensors",
    "generate": "piece_1.mid",
    "harmonize": "piece_1.mid",
    "infill": "piece_1.mid",
    "export": "MODEL_CARD.md",
    "listen prepare": "study.json",
}


def name_of(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "listen" else argv[0]


def value_of(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """A folder holding what a fresh clone gives the README's commands: the example files at their path."""
    folder = tmp_path_factory.mktemp("clone")
    shutil.copytree(ROOT / EXAMPLES, folder / EXAMPLES)
    return folder


def test_the_readme_is_a_front_door_of_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def test_the_readme_shows_every_command():
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == {argv[0] for argv in COMMANDS}


def test_every_file_the_readme_links_to_exists():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [target for target in targets if "://" not in target]
    assert local and [target for target in local if not (ROOT / target).exists()] == []


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv) for argv in COMMANDS])
def test_a_readme_command_runs_and_writes_what_it_says(argv, fresh_clone, monkeypatch, capsys):
    monkeypatch.chdir(fresh_clone)
    name = name_of(argv)
    if tuple(argv[:2]) in SERVERS or tuple(argv[:1]) in SERVERS:
        with pytest.raises(SystemExit) as exited:  # a server never returns: its flags are checked instead
            main([*argv, "--help"])
        assert exited.value.code == 0
        return
    assert main([*argv, *SHORTER.get(name, [])]) == 0, capsys.readouterr().err
    out, json_file = value_of(argv, "--out"), value_of(argv, "--json")
    if out is not None:
        assert (Path(out) / WRITES_INSIDE_OUT.get(name, "")).exists()
    if json_file is not None:
        assert Path(json_file).is_file()
    if name == "render":
        assert Path(argv[2]).stat().st_size > 44  # more than a WAV header


@pytest.mark.parametrize("block", PYTHON_BLOCKS)
def test_a_readme_python_example_runs(block, fresh_clone, monkeypatch):
    monkeypatch.chdir(fresh_clone)
    exec(compile(block, "README.md", "exec"), {})
    assert sorted(path.name for path in Path("out/python").glob("*.mid")) == ["piece_1.mid", "piece_2.mid"]
