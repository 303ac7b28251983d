"""The command line end to end: `musiclstm data` on real files, its summary, and its user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields

import pytest
from conftest import TICKS_PER_BEAT, write_midi

import musiclstm
from musiclstm import load_corpus
from musiclstm.cli import main


def test_data_command_builds_a_corpus_from_a_midi_folder_and_lists_skipped_files(tmp_path, capsys):
    for index in range(5):
        write_midi(tmp_path / "midi" / f"tune{index}.mid", [(60 + index, 0, TICKS_PER_BEAT)])
    (tmp_path / "midi" / "broken.mid").write_bytes(b"MThd\x00")
    status = main(["data", "--source", str(tmp_path / "midi"), "--out", str(tmp_path / "corpus"), "--workers", "2"])
    output = capsys.readouterr().out
    assert status == 0
    assert "Corpus built" in output and "skipped 1 of 6 files" in output and "broken.mid: unreadable MIDI" in output
    assert len(load_corpus(tmp_path / "corpus")) == 5


def test_data_command_json_summary_has_counts_per_split(tmp_path, capsys):
    for index in range(4):
        write_midi(tmp_path / "midi" / f"tune{index}.mid", [(60, 0, 2 * TICKS_PER_BEAT)])
    assert (
        main(
            [
                "data",
                "--source",
                str(tmp_path / "midi"),
                "--out",
                str(tmp_path / "c"),
                "--json",
                "--steps-per-beat",
                "2",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps_per_beat"] == 2 and summary["skipped"] == []
    assert [summary["splits"][s]["pieces"] for s in ("train", "valid", "test")] == [2, 1, 1]
    assert summary["splits"]["train"] == {"pieces": 2, "frames": 8, "notes_per_frame": 1.0}


def test_data_command_on_the_bach_chorales(tmp_path, capsys):
    assert main(["data", "--source", "bach", "--out", str(tmp_path / "bach"), "--limit", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["source"] == "bach" and summary["files_read"] == 5
    assert sum(split["pieces"] for split in summary["splits"].values()) == 5


def test_user_errors_print_one_line_and_exit_2_without_a_traceback(tmp_path, capsys):
    assert main(["data", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("musiclstm: error: ") and "missing: no such file or folder" in error
    assert "Traceback" not in error
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.mid").write_bytes(b"\x00" * 10)
    assert main(["data", "--source", str(tmp_path / "junk"), "--out", str(tmp_path / "c")]) == 2
    assert "no usable piece" in capsys.readouterr().err
    assert main(["data", "--source", "bach", "--out", str(tmp_path / "c"), "--workers", "0"]) == 2
    assert "workers must be at least 1" in capsys.readouterr().err


def test_train_flags_reach_the_runs_config(bach_corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(bach_corpus.path),
                "--out",
                str(out),
                "--preset",
                "small",
                "--objective",
                "all",
                "--chunk",
                "24",
                "--batch-size",
                "8",
                "--grad-clip",
                "2.5",
                "--pos-weight",
                "1",
                "--epochs",
                "1",
                "--lstm-units",
                "16",
                "--window",
                "8",
                "--json",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert {key: config["train"][key] for key in ("objective", "chunk", "batch_size", "grad_clip", "pos_weight")} == {
        "objective": "all",
        "chunk": 24,
        "batch_size": 8,
        "grad_clip": 2.5,
        "pos_weight": 1.0,
    }
    assert (config["model"]["lstm_units"], config["model"]["dense_units"], config["model"]["window"]) == (16, 32, 8)
    assert json.loads(capsys.readouterr().out)["train_sequences"] == sum(
        -(-piece.frames // 24) for piece in bach_corpus.split("train")
    )


def test_evaluate_command_reports_its_context_and_refuses_a_corpus_on_another_grid(bach_corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(bach_corpus.path),
                "--out",
                str(run),
                "--preset",
                "small",
                "--epochs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(run),
                "--data",
                str(bach_corpus.path),
                "--split",
                "valid",
                "--json",
                str(report_path),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["context"] == "stateful" and "context: stateful" in printed
    assert report["split"] == "valid" and report["frames"] == sum(p.frames for p in bach_corpus.split("valid"))
    assert {"nll", "nll_after_first", "frame_accuracy", "precision", "recall", "f1", "binary_accuracy"} <= set(report)
    for index in range(3):
        write_midi(tmp_path / "midi" / f"t{index}.mid", [(60, 0, TICKS_PER_BEAT)])
    assert (
        main(
            [
                "data",
                "--source",
                str(tmp_path / "midi"),
                "--out",
                str(tmp_path / "c1"),
                "--steps-per-beat",
                "1",
                "--json",
            ]
        )
        == 0
    )
    assert main(["evaluate", "--model", str(run), "--data", str(tmp_path / "c1")]) == 2
    assert "1 steps per beat, but the model" in capsys.readouterr().err


def test_evaluate_judges_generated_music_with_baselines_plots_and_a_benchmark_file(
    trained_runs, bach_corpus, tmp_path, capsys
):
    import pickle

    run = str(trained_runs["all"])
    assert (
        main(
            [
                "generate",
                "--model",
                run,
                "--out",
                str(tmp_path / "gen"),
                "--num-outputs",
                "2",
                "--length",
                "32",
                "--no-audio",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    report_path = tmp_path / "report.json"
    assert (
        main(
            [
                "evaluate",
                "--model",
                run,
                "--data",
                str(bach_corpus.path),
                "--generated",
                str(tmp_path / "gen"),
                "--plots",
                str(tmp_path / "plots"),
                "--json",
                str(report_path),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["frames"] == sum(piece.frames for piece in bach_corpus.split("test"))
    precision, recall = report["precision"], report["recall"]
    assert report["f1"] == pytest.approx(2 * precision * recall / (precision + recall) if precision + recall else 0)
    assert 0 <= report["frame_accuracy"] <= min(precision, recall) <= 1  # TP/(TP+FP+FN) is below both
    assert 0.9 < report["binary_accuracy"] <= 1 and 0 < report["nll"] < report["baselines"]["marginal"]["nll"] * 1.5
    assert report["baselines"]["previous_step"]["nll"] < report["baselines"]["marginal"]["nll"]
    generated = report["generated"]
    assert generated["generated"]["pieces"] == 2 and generated["real"]["pieces"] == len(bach_corpus.split("test"))
    assert generated["generated"]["frames"] == 2 * 32  # what the model made, the primers left out
    assert generated["two_sample_accuracy"] is None  # 2 bars each: no 4-bar passage to classify
    assert "two-sample test: not run (needs 2 or more pieces of 4 bars" in printed
    assert set(generated["seed_targets"]["note_density_2_to_4"]) == {"value", "passed"}
    assert (tmp_path / "plots" / "generated_vs_real.png").is_file()
    assert "baseline: previous_step" in printed and "seed's target, 2-4 notes per step" in printed
    benchmark = tmp_path / "bench.pkl"
    steps = [[60, 64, 67]] * 8 + [[62, 65, 69]] * 8
    benchmark.write_bytes(pickle.dumps({"train": [steps] * 3, "valid": [steps], "test": [steps[::-1]] * 2}))
    assert main(["evaluate", "--model", run, "--data", str(benchmark), "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["frames"] == 32 and report["pieces"] == 2 and report["corpus"] == str(benchmark)


def test_export_never_loads_lightning(trained_runs, tmp_path):
    script = (
        "import sys\nfrom musiclstm.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
        "except SystemExit as done:\n    code = done.code\n"
        "print('lightning' in sys.modules, 'lightning.pytorch' in sys.modules)\nsys.exit(code)"
    )
    for arguments in (
        ["export", "--help"],
        ["export", "--run", str(trained_runs["last"]), "--out", str(tmp_path / "m")],
    ):
        done = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip().endswith("False False")


@pytest.mark.parametrize(
    "command, settings_class",
    [("data", "CorpusConfig"), ("train", "ModelConfig"), ("train", "TrainConfig"), ("generate", "GenerationSettings")],
)
def test_every_documented_setting_has_its_flag(command, settings_class, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = capsys.readouterr().out
    for field in fields(getattr(musiclstm, settings_class)):
        if field.metadata.get("help"):
            assert musiclstm.flag_name(field) in help_text, field.name


def test_a_bad_tempo_is_refused_before_any_work(trained_runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["generate", "--model", str(trained_runs["all"]), "--out", str(out), "--tempo", "0"]) == 2
    assert "tempo must be between 20 and 400 beats per minute, got 0.0" in capsys.readouterr().err
    assert not out.exists()


def test_an_output_path_that_cannot_be_written_is_refused_before_any_work(
    trained_runs, bach_corpus, tmp_path, capsys, monkeypatch
):
    from musiclstm.composing import generation
    from musiclstm.data import corpus
    from musiclstm.judging import evaluation
    from musiclstm.network import bundle, training

    def no_work(*args, **kwargs):
        raise AssertionError("work began before the output path was checked")

    for module, first_work in (
        (generation, "compose_rolls"),
        (corpus, "read_source"),
        (evaluation, "open_data"),
        (training, "load_corpus"),
        (bundle, "load_corpus"),
    ):
        monkeypatch.setattr(module, first_work, no_work)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    model = ["--model", str(trained_runs["all"])]
    commands = [
        ["generate", *model, "--out", str(a_file), "--length", "100000"],
        ["evaluate", *model, "--data", str(bach_corpus.path), "--json", str(a_file / "report.json")],
        ["data", "--source", "bach", "--out", str(a_file)],
        ["train", "--data", str(bach_corpus.path), "--out", str(a_file / "run")],
        ["export", "--run", str(trained_runs["all"]), "--out", str(a_file)],
    ]
    for command in commands:
        assert main(command) == 2, command
        assert "a_file" in capsys.readouterr().err
    assert a_file.read_text() == "not a folder"


def test_evaluate_skips_and_names_an_unreadable_generated_file(trained_runs, bach_corpus, tmp_path, capsys):
    pieces = tmp_path / "pieces"
    assert (
        main(["generate", "--model", str(trained_runs["all"]), "--out", str(pieces), "--length", "8", "--no-audio"])
        == 0
    )
    (pieces / "broken.mid").write_bytes(b"MThd not really")
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(trained_runs["all"]),
                "--data",
                str(bach_corpus.path),
                "--generated",
                str(pieces),
            ]
        )
        == 0
    )
    assert "skipped broken.mid:" in capsys.readouterr().out
