"""`evaluate --generated` through the console script: a piece's JSON is untrusted, and so is an output path.

Each piece that `generate` writes has a JSON beside it whose `primer_steps` says where the model's music
starts. One that cannot say so is named with its reason and its piece skipped, as an unreadable MIDI
file is; a set with nothing left to judge is refused by name. The bundled model judges a corpus of
five hand-written pieces, so that each run takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musiclstm import CorpusConfig, build_corpus
from musiclstm.music.render import write_midi

CONSOLE = str(Path(sys.executable).with_name("musiclstm"))
STEPS = 32  # each piece: two bars of sixteenth notes


def chord_roll(pitches: list[int], steps: int = STEPS) -> np.ndarray:
    """A roll holding one chord (MIDI pitches) for `steps` steps, struck again every beat."""
    roll = np.zeros((steps, 88), dtype=bool)
    roll[:, [pitch - 21 for pitch in pitches]] = True
    roll[3::4] = False
    return roll


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Five pieces of one chord each, on the bundled model's grid: three to train on, one valid, one test."""
    folder = tmp_path_factory.mktemp("sidecars")
    for index, root in enumerate((60, 62, 64, 65, 67)):
        write_midi(chord_roll([root, root + 4, root + 7]), folder / "songs" / f"song{index}.mid", 4)
    build_corpus(CorpusConfig(str(folder / "songs"), steps_per_beat=4), folder / "corpus")
    return folder / "corpus"


def pieces_with(folder: Path, sidecars: dict[str, str]) -> Path:
    """A folder of generated pieces, piece_n.mid with the JSON text given for it (none where None)."""
    folder.mkdir(parents=True)
    for number, (name, text) in enumerate(sidecars.items()):
        write_midi(chord_roll([57 + number, 60 + number, 64 + number]), folder / f"{name}.mid", 4)
        if text is not None:
            (folder / f"{name}.json").write_text(text)
    return folder


def evaluate(corpus: Path, pieces: Path, *flags: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [CONSOLE, "evaluate", "--data", str(corpus), "--generated", str(pieces), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


NOT_WHOLE = f"not a whole number from 0 to {STEPS} (the piece's steps), so where the model's music starts is unknown"
BAD_SIDECARS = {  # the JSON beside piece_2.mid, and what is said of it after "its piece_2.json"
    "a list": ("[8]", "is a JSON list, not an object"),
    "below zero": ('{"primer_steps": -50}', f"gives primer_steps -50, {NOT_WHOLE}"),
    "words": ('{"primer_steps": "sixty-four"}', f"gives primer_steps 'sixty-four', {NOT_WHOLE}"),
    "NaN": ('{"primer_steps": NaN}', f"gives primer_steps nan, {NOT_WHOLE}"),
    "1e20": ('{"primer_steps": 1e20}', f"gives primer_steps 1e+20, {NOT_WHOLE}"),
}


@pytest.mark.parametrize("kind", BAD_SIDECARS)
def test_a_piece_whose_json_cannot_say_where_its_primer_ends_is_skipped_and_named(corpus, tmp_path, kind):
    text, reason = BAD_SIDECARS[kind]
    pieces = pieces_with(tmp_path / "pieces", {"piece_1": '{"primer_steps": 8}', "piece_2": text})
    done = evaluate(corpus, pieces, "--json", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stderr
    assert f"skipped {pieces / 'piece_2.mid'}: its piece_2.json {reason}\n" in done.stderr  # the warning
    assert f"  skipped piece_2.mid: its piece_2.json {reason}\n" in done.stdout
    judged = json.loads((tmp_path / "report.json").read_text())["generated"]
    assert judged["generated"]["pieces"] == 1 and judged["generated"]["frames"] == STEPS - 8
    assert [entry["name"] for entry in judged["skipped"]] == ["piece_2.mid"]


def test_a_set_with_nothing_after_its_primers_is_refused_by_name_without_a_verdict(corpus, tmp_path):
    pieces = pieces_with(tmp_path / "pieces", {"piece_1": '{"primer_steps": 32}', "piece_2": '{"primer_steps": 32}'})
    done = evaluate(corpus, pieces)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"skipped {pieces / 'piece_1.mid'}: no steps after its 32-step primer to judge\n")
    assert f"musiclstm: error: {pieces}: nothing to judge, no .mid file with steps of its own to read" in done.stderr
    assert "FAILED" not in done.stdout + done.stderr and "KL" not in done.stdout


def test_plots_go_into_a_folder_made_with_its_parents(corpus, tmp_path):
    pieces = pieces_with(tmp_path / "pieces", {"piece_1": '{"primer_steps": 8}'})
    done = evaluate(corpus, pieces, "--plots", "new/deeper/", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "deeper" / "generated_vs_real.png").is_file()
    assert "  plot: new/deeper/generated_vs_real.png" in done.stdout


def test_plots_without_generated_music_or_with_a_file_in_the_way_are_refused_before_any_work(corpus, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    pieces = pieces_with(tmp_path / "pieces", {"piece_1": None})
    done = evaluate(corpus, pieces, "--plots", str(tmp_path / "taken" / "plots"))
    assert done.returncode == 2
    assert f"musiclstm: error: {tmp_path / 'taken' / 'plots'}: {tmp_path / 'taken'} is a file" in done.stderr
    command = [CONSOLE, "evaluate", "--data", str(corpus), "--plots", str(tmp_path / "plots")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not (tmp_path / "plots").exists()
    assert "the plots draw generated music beside real; give --generated too" in done.stderr
