"""Composing with a trained model: keys respected, seeds repeatable, primers kept, files that read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TICKS_PER_BEAT, write_midi

from musiclstm import KEY_NAMES, MusicLSTMError
from musiclstm.cli import main
from musiclstm.composing.generation import generate, nearest_shift, primer_voices
from musiclstm.composing.saving import save_pieces, score_key
from musiclstm.config import scale_pitch_classes
from musiclstm.music.roll import midi_to_roll


def pitch_classes_played(roll: np.ndarray) -> set[int]:
    return {(21 + key) % 12 for key in np.flatnonzero(roll.any(axis=0))}


def test_every_generated_note_respects_the_key_and_scale(trained_runs):
    composition = generate(
        trained_runs["all"], length=48, num_outputs=4, key="F#", scale="minor", choose="sample", temperature=1.5, seed=1
    )
    continuation = composition.rolls[:, composition.primer_steps :]
    assert continuation.any()
    assert pitch_classes_played(continuation.reshape(-1, 88)) <= set(scale_pitch_classes("F#", "minor"))


def test_the_same_seed_gives_the_same_pieces_and_the_outputs_of_a_batch_differ(trained_runs):
    settings = dict(length=32, num_outputs=3, choose="sample", temperature=1.2, seed=7)
    first, again = generate(trained_runs["all"], **settings), generate(trained_runs["all"], **settings)
    assert np.array_equal(first.rolls, again.rolls) and first.rolls.shape == (3, first.primer_steps + 32, 88)
    continuations = first.rolls[:, first.primer_steps :]
    assert not np.array_equal(continuations[0], continuations[1]) and not np.array_equal(
        continuations[1], continuations[2]
    )
    assert not np.array_equal(generate(trained_runs["all"], **dict(settings, seed=8)).rolls, first.rolls)


def test_the_primers_steps_open_the_piece(trained_runs, tmp_path):
    primer = write_midi(tmp_path / "theme.mid", [(60, 0, TICKS_PER_BEAT), (64, TICKS_PER_BEAT, 2 * TICKS_PER_BEAT)])
    composition = generate(trained_runs["last"], primer, length=16, num_outputs=2, seed=0)
    primer_roll = midi_to_roll(primer, 4).roll
    assert composition.primer_steps == len(primer_roll) == 8 and composition.primer_sources == (str(primer),) * 2
    assert all(np.array_equal(roll[:8], primer_roll) for roll in composition.rolls)


def test_key_auto_follows_each_primer_and_keeps_every_note_in_that_key(trained_runs, tmp_path):
    d_major_scale = [62, 64, 66, 67, 69, 71, 73, 74]
    notes = [(pitch, i * TICKS_PER_BEAT, (i + 1) * TICKS_PER_BEAT) for i, pitch in enumerate(d_major_scale)]
    primer = write_midi(tmp_path / "d_major.mid", notes)
    settings = dict(choose="sample", temperature=1.5, seed=2, scale="major")  # the presets play no key mask
    composition = generate(trained_runs["all"], primer, length=40, **settings)
    assert composition.keys == ("D",) and composition.settings["key"] == "auto"
    continuation = composition.rolls[0, composition.primer_steps :]
    assert pitch_classes_played(continuation) <= set(scale_pitch_classes("D", "major"))
    (piece,) = save_pieces(composition, tmp_path, audio=False)
    assert piece["key"] == "D major" and piece["statistics"]["in_key_rate"] == 1.0


def test_without_a_primer_each_piece_opens_on_its_own_held_out_passage_so_even_threshold_pieces_differ(
    trained_runs, bach_corpus
):
    composition = generate(trained_runs["all"], length=24, num_outputs=3, choose="threshold", seed=3)
    primers, continuations = np.split(composition.rolls, [composition.primer_steps], axis=1)
    assert composition.primer_steps == 64 and all("(held out)" in source for source in composition.primer_sources)
    held_out = {piece.name: piece for piece in bach_corpus.split("test")}
    for number, (primer, source) in enumerate(zip(primers, composition.primer_sources, strict=True)):
        piece, start = held_out[source.split(",")[0]], int(source.split("steps ")[1].split("-")[0])
        assert piece.grid.is_bar_start(start)  # a passage opens on one of its piece's own bar lines
        assert np.array_equal(piece.roll[start : start + 64], primer)
        assert np.array_equal(piece.onsets[start : start + 64], composition.onsets[number, :64])
        assert composition.grid(number).is_bar_start(0)  # and the piece composed after it keeps that metre
    assert len({primer.tobytes() for primer in primers}) == 3
    assert len({continuation.tobytes() for continuation in continuations}) > 1  # one shared primer gave 1


def test_a_model_whose_corpus_is_gone_starts_each_piece_from_a_few_random_in_key_notes(trained_runs, tmp_path):
    import shutil

    run = shutil.copytree(trained_runs["all"], tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["data"]["corpus"] = str(tmp_path / "moved-away")
    (run / "config.json").write_text(json.dumps(config))
    composition = generate(run, length=8, num_outputs=4, key="Eb", scale="major", seed=9)
    primers = composition.rolls[:, :1]
    assert composition.primer_steps == 1 and composition.primer_sources[0].startswith("a quiet start")
    assert (primers.sum(axis=(1, 2)) == 3).all() and len({primer.tobytes() for primer in primers}) > 1
    assert pitch_classes_played(primers.reshape(-1, 88)) <= set(scale_pitch_classes("Eb", "major"))


@pytest.mark.parametrize("objective", ["last", "all"])
@pytest.mark.parametrize("context", ["window", "stateful"])
def test_a_model_of_either_objective_generates_in_either_context(trained_runs, objective, context):
    composition = generate(trained_runs[objective], length=20, context=context, seed=2)
    assert composition.rolls.shape[1:] == (composition.primer_steps + 20, 88)
    assert composition.settings["context"] == context
    assert composition.rolls[0, composition.primer_steps :].any(axis=1).all()  # the fallback never leaves a step silent


@pytest.mark.parametrize("context", ["window", "stateful"])
def test_bf16_generation_plays_nearly_the_notes_of_fp32(trained_runs, context):
    from musiclstm.network.model import bf16_lstm_problem

    if bf16_lstm_problem() is not None:  # an AVX2-only CPU: generate refuses bf16 (tests/test_model.py)
        pytest.skip(f"this CPU has no bf16 LSTM in oneDNN: {bf16_lstm_problem()}")
    pieces = {
        precision: generate(trained_runs["all"], length=48, num_outputs=3, context=context, precision=precision, seed=5)
        for precision in ("32", "bf16-mixed")
    }
    same = (pieces["32"].rolls == pieces["bf16-mixed"].rolls).mean()
    assert 0.99 <= same and pieces["bf16-mixed"].settings["precision"] == "bf16-mixed"


def test_a_model_generates_in_the_context_its_training_taught_by_default(trained_runs):
    assert generate(trained_runs["last"], length=4, seed=0).settings["context"] == "window"
    assert generate(trained_runs["all"], length=4, seed=0).settings["context"] == "stateful"


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(temperature=0.0), "temperature must be above 0"),
        (dict(key="H"), "unknown key 'H'"),
        (dict(scale="lydian"), "unknown scale 'lydian'"),
        (dict(length=0), "length must be from 1"),
        (dict(num_outputs=100_000), "num_outputs must be from 1"),
        (dict(precision="fp8"), "unknown precision 'fp8'"),
    ],
)
def test_bad_settings_are_refused_by_name(trained_runs, settings, message):
    with pytest.raises(MusicLSTMError, match=message):
        generate(trained_runs["all"], **settings)


def test_a_bad_model_folder_and_a_primer_that_is_not_midi_are_named(trained_runs, tmp_path):
    with pytest.raises(MusicLSTMError, match="not a model folder"):
        generate(tmp_path)
    (tmp_path / "theme.mid").write_text("la la la")
    with pytest.raises(MusicLSTMError, match="theme.mid: not a MIDI file"):
        generate(trained_runs["all"], tmp_path / "theme.mid")


def test_generate_and_render_commands_write_files_and_report_user_errors(trained_runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "generate",
                "--model",
                str(trained_runs["all"]),
                "--out",
                str(out),
                "--num-outputs",
                "2",
                "--strategy",
                "creative",
                "--key",
                "Bb",
                "--scale",
                "major",
                "--length",
                "24",
                "--seed",
                "5",
                "--tempo",
                "90",
                "--max-notes",
                "4",
            ]
        )
        == 0
    )
    assert sorted(path.name for path in out.iterdir()) == [
        f"piece_{n}.{suffix}" for n in (1, 2) for suffix in ("json", "mid", "png", "wav")
    ]
    assert "Wrote 2 piece(s)" in capsys.readouterr().out
    assert main(["render", str(out / "piece_1.mid"), str(tmp_path / "again.wav")]) == 0
    assert (tmp_path / "again.wav").stat().st_size > 1000
    assert main(["generate", "--model", str(trained_runs["all"]), "--out", str(out), "--temperature", "-1"]) == 2
    assert "temperature must be above 0" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "missing.mid"), str(tmp_path / "x.wav")]) == 2


def test_a_missing_seed_is_drawn_and_kept_so_the_pieces_can_be_made_again(trained_runs):
    first = generate(trained_runs["all"], length=24, choose="sample", temperature=1.3)
    again = generate(trained_runs["all"], length=24, choose="sample", temperature=1.3, seed=first.settings["seed"])
    assert isinstance(first.settings["seed"], int) and np.array_equal(first.rolls, again.rolls)


def test_the_nearest_shift_keeps_every_note_on_the_keyboard_and_goes_down_on_a_tritone():
    middle_c = np.zeros((2, 88), dtype=bool)
    middle_c[0, 39] = True  # C4
    assert [nearest_shift(middle_c, interval) for interval in (0, 2, 7, 6, -1)] == [0, 2, -5, -6, -1]
    edges = middle_c.copy()
    edges[1, [0, 87]] = True  # A0 and C8: no move keeps both
    assert nearest_shift(edges, 0) == 0 and nearest_shift(edges, 5) is None
    low = np.zeros((1, 88), dtype=bool)
    low[0, 1] = True  # A#0: two semitones down would fall off, so ten up
    assert nearest_shift(low, -2) == 10


def in_key_share(roll: np.ndarray, key: str, scale: str) -> float:
    """The share of a roll's sounding key-steps whose pitch class lies in the key."""
    classes = scale_pitch_classes(key, scale)
    per_key = roll.sum(axis=0)
    return sum(count for k, count in enumerate(per_key) if (21 + k) % 12 in classes) / per_key.sum()


def test_a_fixed_key_moves_each_held_out_primer_into_it_and_says_so():
    composition = generate(key="F#", scale="minor", num_outputs=4, length=2, seed=1)
    for roll, source in zip(composition.rolls, composition.primer_sources, strict=True):
        primer = roll[: composition.primer_steps]
        shares = {root: in_key_share(primer, root, "minor") for root in KEY_NAMES}
        assert shares["F#"] == max(shares.values()), source  # no other minor key holds more of its notes
    assert any("transposed" in source and "to F#" in source for source in composition.primer_sources)


def test_key_auto_and_a_users_primer_keep_the_primer_as_it_is(tmp_path):
    assert not any("transposed" in source for source in generate(num_outputs=4, length=2, seed=1).primer_sources)
    theme = write_midi(tmp_path / "theme.mid", [(60, 0, TICKS_PER_BEAT), (64, 0, TICKS_PER_BEAT)])
    composition = generate(primer=theme, key="F#", scale="minor", length=2, seed=1)
    assert composition.primer_sources == (str(theme),)
    assert np.array_equal(composition.rolls[0, : composition.primer_steps], midi_to_roll(theme, 4).roll)


def test_phrase_bars_places_phrase_ends_where_asked_written_as_fermatas(trained_runs, bach_corpus, tmp_path):
    assert bach_corpus.phrase_bars() == 2  # the chorales' fermatas lie two bars apart, mostly
    run = trained_runs["all"]  # the small preset reads phrase ends, as the default network does
    for bars in (None, 1, 3):
        composition = generate(run, length=96, num_outputs=1, seed=2, phrase_bars=bars)
        piece, primer_steps = composition.pieces[0], composition.primer_steps
        placed = [first for first, _ in piece.grid.phrase_ends if first >= primer_steps]
        place, length = piece.grid.place_in_bar(np.array(placed))
        assert placed and (2 * place == length).all()  # on the half bar of 4/4
        assert set(np.diff(placed)) <= {(bars or 2) * 16}
    save_pieces(composition, tmp_path / "out", audio=False)
    assert midi_to_roll(next((tmp_path / "out").glob("*.mid")), 4).grid.phrase_ends == piece.grid.phrase_ends
    unphrased = generate(run, length=96, num_outputs=1, seed=2, phrase_bars=0)
    assert all(end <= unphrased.primer_steps for _, end in unphrased.pieces[0].grid.phrase_ends)


def test_a_piece_in_its_keys_own_mode_is_scored_in_that_key_and_other_scales_leave_it_to_the_analysis():
    assert score_key("A minor", "mode") == "A minor" and score_key("Eb", "mode") == "Eb major"
    assert score_key("D", "major") == "D major" and score_key("D", "dorian") is None


def test_a_pieces_voices_are_the_number_of_keys_its_primer_sounds_most_often():
    primer = np.zeros((10, 88), dtype=bool)
    primer[:7, [27, 31, 34, 39]] = True  # four voices for 7 steps
    primer[7:9, [27, 31, 34]] = True  # three for 2, then a silent step
    assert primer_voices(primer, 2).tolist() == [4, 4]
    assert primer_voices(np.stack([primer, np.zeros_like(primer)]), 2).tolist() == [4, 0]
