"""The `musiclstm` command: a thin layer that turns flags into API calls and results into text.

Flags default to None so that only what the user gave overrides the settings object's defaults.
User errors (`MusicLSTMError`) are caught once here, printed as `musiclstm: error: ...`, exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from dataclasses import fields, replace
from pathlib import Path

from musiclstm import CorpusConfig, MusicLSTMError, __version__, build_corpus, bundled_model
from musiclstm.config import (
    CHOICES,
    CONTEXTS,
    DEFAULT_SEED,
    DEFAULT_STEPS_PER_BEAT,
    MODEL_PRESETS,
    OBJECTIVES,
    PRECISIONS,
    SPLITS,
    STRATEGIES,
    ModelConfig,
    TrainConfig,
)

MODEL_FLAGS = tuple(field.name for field in fields(ModelConfig))  # every field that has a flag overrides a preset
TRAIN_FLAGS = tuple(field.name for field in fields(TrainConfig))


def add_data_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "data",
        help="turn MIDI files, the Bach chorales or a benchmark file into a piano-roll corpus",
        description="Read a source into a piano-roll corpus folder (manifest.json + bit-packed rolls). "
        "Unreadable files are skipped and listed with their reason. Re-running on an unchanged source "
        "with the same settings reuses the corpus.",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="'bach' (the chorales in music21's corpus), a folder of .mid/.midi files "
        "(searched recursively), or a benchmark file (.pickle/.pkl/.json with "
        "train/valid/test; its split is kept)",
    )
    parser.add_argument("--out", required=True, help="the corpus folder to write")
    parser.add_argument(
        "--steps-per-beat",
        type=int,
        help=f"grid steps per quarter note (default {DEFAULT_STEPS_PER_BEAT} for MIDI and "
        "scores; benchmark files are taken as sampled, 1 per beat)",
    )
    parser.add_argument("--seed", type=int, help=f"seed of the split by piece (default {DEFAULT_SEED})")
    parser.add_argument(
        "--split",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VALID", "TEST"),
        dest="split_fractions",
        help="split fractions by piece (default 0.70 0.15 0.15)",
    )
    parser.add_argument("--workers", type=int, help="processes reading files in parallel (default 1)")
    parser.add_argument("--limit", type=int, help="read only the first N files (sorted), for a quick try")
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus is up to date")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run_data)


def given(args: argparse.Namespace, *names: str) -> dict:
    """The options among `names` that the user actually gave."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def run_data(args: argparse.Namespace) -> int:
    config = CorpusConfig(args.source, **given(args, "steps_per_beat", "seed", "split_fractions", "workers", "limit"))
    summary = build_corpus(config, args.out, force=args.force, progress=not args.json)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """Render a corpus summary as a short table for the terminal."""
    verb = "reused" if summary["reused"] else "built"
    lines = [
        f"Corpus {verb}: {summary['path']}",
        f"  source {summary['source']}, {summary['steps_per_beat']} steps per beat, "
        f"{summary['bytes_on_disk'] / 1e6:.2f} MB of rolls, {summary['seconds']:.1f} s",
        f"  {'split':<6} {'pieces':>7} {'frames':>9} {'notes/frame':>12}",
    ]
    for split in SPLITS:
        row = summary["splits"][split]
        lines.append(f"  {split:<6} {row['pieces']:>7} {row['frames']:>9} {row['notes_per_frame']:>12.2f}")
    dropped = []
    if summary["notes_off_keyboard"]:
        dropped.append(f"{summary['notes_off_keyboard']} notes off the 88 keys")
    if summary["drum_notes"]:
        dropped.append(f"{summary['drum_notes']} drum notes")
    if dropped:
        lines.append("  dropped: " + ", ".join(dropped))
    skipped = summary["skipped"]
    lines.append(f"  skipped {len(skipped)} of {summary['files_read']} files" if skipped else "  skipped none")
    lines += [f"    {entry['name']}: {entry['reason']}" for entry in skipped]
    return "\n".join(lines)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(MODEL_PRESETS),
        default="seed",
        help="architecture: 'seed' is the specification's (LSTM 512 x 2, dense 256), "
        "'small' a quick one (64 x 2, dense 32); flags below override it",
    )
    parser.add_argument("--window", type=int, help="steps of context per example (default 64)")
    parser.add_argument("--lstm-units", type=int, help="units per LSTM layer")
    parser.add_argument("--dense-units", type=int, help="units of the dense ReLU layer")
    parser.add_argument("--input-dropout", type=float, help="dropout on each LSTM's input (seed 0.3)")
    parser.add_argument(
        "--recurrent-dropout", type=float, help="DropConnect on the recurrent weights (seed 0.2; see README)"
    )
    parser.add_argument("--dense-dropout", type=float, help="dropout after the dense layer (seed 0.4)")


def model_config(args: argparse.Namespace) -> ModelConfig:
    return replace(MODEL_PRESETS[args.preset], **given(args, *MODEL_FLAGS))


def add_summary_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "summary",
        help="print a model's layers and its true parameter count",
        description="Print the layer table and parameter count of a preset.",
    )
    add_model_flags(parser)
    parser.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from musiclstm.model import keras_parameter_count, summary_rows

    config = model_config(args)
    print(f"{'layer':<24} {'output shape':<18} {'parameters':>12}")
    for layer, shape, count in summary_rows(config):
        print(f"{layer:<24} {shape:<18} {count:>12,}")
    print(
        f"\nKeras counts {keras_parameter_count(config):,} for this network: PyTorch's LSTM keeps two bias "
        "vectors per layer (input and recurrent) where Keras keeps one, 4 x units more per layer.\n"
        "The specification's table (6,451,624) does not match its own architecture."
    )
    return 0


def add_train_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train a model on a corpus",
        description="Train on a corpus's train split, validating on its valid split. The run folder gets "
        "config.json, model.safetensors (best weights by val_loss), history.csv/png and a resume checkpoint.",
    )
    parser.add_argument("--data", help="a corpus folder made by 'musiclstm data' (not needed with --resume)")
    parser.add_argument("--out", required=True, help="the run folder to write")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (epoch, optimiser, schedule, "
        "early-stop state); --epochs and --max-minutes may be raised",
    )
    add_model_flags(parser)
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        help="'all' (default): every step of a chunk is a target, about 2 LSTM steps per target; "
        "'last' (the seed's): predict the step after each window, 64 steps per target",
    )
    parser.add_argument(
        "--chunk",
        type=int,
        help="objective 'all': target frames per training sequence, read after a window of context (default 64)",
    )
    parser.add_argument("--grad-clip", type=float, help="clip the gradient norm to this (default: no clipping)")
    parser.add_argument(
        "--pos-weight",
        type=float,
        help="loss weight of a sounding note (default 10, the seed's; NLL is scored on calibrated probabilities)",
    )
    parser.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    parser.add_argument(
        "--batch-size", type=int, help="sequences per batch (default: 16 chunks for 'all', 64 windows for 'last')"
    )
    parser.add_argument("--epochs", type=int, help="most epochs (default 30; early stopping may end sooner)")
    parser.add_argument(
        "--early-stop-patience",
        type=int,
        help="epochs without a better val_loss before stopping (default 20 for 'all', 5 for 'last')",
    )
    parser.add_argument(
        "--lr-patience",
        type=int,
        help="epochs without a better val_loss before the rate halves (default 10 for 'all', 3 for 'last')",
    )
    parser.add_argument("--precision", choices=PRECISIONS, help="'32' or 'bf16-mixed' autocast (default 32)")
    parser.add_argument("--seed", type=int, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--max-minutes", type=float, help="stop after this much training time")
    parser.add_argument(
        "--transpose",
        action="store_true",
        default=None,
        help="transpose each example by -5..+6 semitones, keeping notes on the keyboard",
    )
    parser.add_argument("--accelerator", help="'cpu', 'gpu', 'auto' ... (Lightning's; default auto)")
    parser.add_argument("--devices", type=int, help="processes per node; more than 1 trains with DDP")
    parser.add_argument("--num-nodes", type=int, help="machines, for DDP across nodes (default 1)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from musiclstm.train import resumed_configs, train

    if not args.verbose:  # after the import, which sets Lightning's own log level
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # device banners and tips
        warnings.filterwarnings("ignore", module="lightning")
    if args.resume:
        corpus, model, training = resumed_configs(args.out, **given(args, *TRAIN_FLAGS))
    else:
        if not args.data:
            raise MusicLSTMError("train needs --data (a corpus folder), or --resume to continue a run")
        corpus, model, training = args.data, model_config(args), TrainConfig(**given(args, *TRAIN_FLAGS))
    result = train(corpus, args.out, model, training, resume=args.resume, progress=not args.json)
    if result["rank"] != 0:
        return 0
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"Trained {result['epochs']} epochs in {result['seconds']} s: best val_loss {result['best_val_loss']:.4f}, "
            f"best validation NLL {result['best_val_nll']:.3f} nats per frame"
            f"{' (stopped early)' if result['stopped_early'] else ''}. Model in {result['run']}"
        )
    return 0


def add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="score a model on a corpus split beside two baselines, and judge generated music",
        description="Predict every frame of every piece of a split from its left context and report negative "
        "log-likelihood in nats per frame, frame accuracy TP/(TP+FP+FN), precision, recall, F1 and binary accuracy, "
        "beside a per-key frequency baseline and a per-key previous-step baseline fitted on the train split.",
    )
    parser.add_argument("--model", help="a run folder made by 'musiclstm train' (default: the bundled Bach model)")
    parser.add_argument(
        "--data",
        required=True,
        help="a corpus folder made by 'musiclstm data', or a benchmark file (.pickle/.pkl/.json)",
    )
    parser.add_argument("--split", choices=SPLITS, default="test", help="which split to score (default test)")
    parser.add_argument(
        "--context",
        choices=CONTEXTS,
        help="'stateful': state carried through each whole piece (the literature's protocol); "
        "'window': each frame from the window before it (the seed's). Default: the model's own",
    )
    parser.add_argument("--generated", help="a folder of generated .mid files to judge against the split's music")
    parser.add_argument("--plots", help="a folder for pitch-class and density plots, generated beside real")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from musiclstm.evaluate import evaluate_run
    from musiclstm.files import write_json_atomically

    model = args.model or bundled_model()
    report = evaluate_run(model, args.data, args.split, args.context, args.generated, args.plots, progress=True)
    if args.json:
        write_json_atomically(Path(args.json), report)
    print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    """Render an evaluation report for the terminal, naming the context that produced it."""
    context = (
        "state carried through each whole piece"
        if report["context"] == "stateful"
        else f"each frame from the {report['window']} before it"
    )
    lines = [
        f"{report['model']} on the {report['split']} split of {report['corpus']}: {report['pieces']} pieces, "
        f"{report['frames']} frames; context: {report['context']} ({context})",
        f"  {'':<24} {'NLL':>8} {'frame acc':>10} {'precision':>10} {'recall':>8} {'F1':>7}",
    ]
    rows = [("model", report)] + [(f"baseline: {name}", row) for name, row in report["baselines"].items()]
    for name, row in rows:
        lines.append(
            f"  {name:<24} {row['nll']:>8.3f} {row['frame_accuracy']:>10.3f} {row['precision']:>10.3f} "
            f"{row['recall']:>8.3f} {row['f1']:>7.3f}"
        )
    lines += [
        "  NLL: nats per frame, calibrated probabilities; frame accuracy: TP / (TP + FP + FN) at 0.5 (Bay et al. 2009)",
        f"  model: NLL without each piece's first frame {report['nll_after_first']:.3f}; binary accuracy "
        f"{report['binary_accuracy']:.4f} (not a quality bar); training loss {report['loss']:.4f}",
    ]
    if "generated" in report:
        generated = report["generated"]
        lines.append(
            f"  {'music':<24} {'density':>8} {'polyphony':>10} {'in key':>8} {'empty':>7} {'repeats':>8} {'KL':>6}"
        )
        for side in ("generated", "real"):
            row = generated[side]
            in_key = f"{row['in_key_rate']:.2f}" if row["in_key_rate"] is not None else "-"
            lines.append(
                f"  {side:<24} {row['note_density']:>8.2f} {row['polyphony']:>10.2f} {in_key:>8} "
                f"{row['empty_step_rate']:>7.2f} {row['repeated_window_rate']:>8.2f} "
                f"{row['pitch_class_kl_from_train']:>6.3f}"
            )
        target = generated["seed_targets"]["note_density_2_to_4"]
        lines.append(
            f"  seed's target, 2-4 notes per step: {'passed' if target['passed'] else 'FAILED'} "
            f"({target['value']:.2f}); KL: pitch classes against the train split, nats"
        )
    for plot in report.get("plots", []):
        lines.append(f"  plot: {plot}")
    return "\n".join(lines)


def add_generate_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate",
        help="compose new pieces with a trained model (MIDI, WAV, PNG, JSON)",
        description="Compose pieces one step at a time: logits -> temperature -> key mask -> choose notes. "
        "Each piece is written as .mid, .wav, .png and .json in --out.",
    )
    parser.add_argument("--model", help="a run folder made by 'musiclstm train' (default: the bundled Bach model)")
    parser.add_argument("--out", default="out", help="folder for the pieces (default ./out)")
    parser.add_argument("--length", type=int, help="steps to generate (default 256: 16 bars at 4 steps per beat)")
    parser.add_argument(
        "--strategy",
        choices=sorted(STRATEGIES),
        help="the specification's presets: conservative 0.5, balanced 0.8 (default), creative 1.2 "
        "(all in major), free 1.0 (no key), jazz 0.9 (blues)",
    )
    parser.add_argument("--temperature", type=float, help="overrides the strategy's: each key's logit is divided by it")
    parser.add_argument(
        "--key", help="root of the key: C, C#, Db, ... B, or auto: the key that best fits each primer (default auto)"
    )
    parser.add_argument(
        "--scale",
        help="major, minor, harmonic_minor, dorian, mixolydian, pentatonic, "
        "minor_pentatonic, blues or chromatic (default: the strategy's)",
    )
    parser.add_argument(
        "--choose",
        choices=CHOICES,
        help="'threshold' (default): every key above --threshold; 'sample': a Bernoulli draw per key",
    )
    parser.add_argument("--threshold", type=float, help="probability a key must exceed (default 0.5)")
    parser.add_argument("--top-k", type=int, help="notes for a step that would be silent, in the key (default 3)")
    parser.add_argument("--max-notes", type=int, help="at most this many notes per step")
    parser.add_argument(
        "--primer",
        help="a MIDI file the pieces start from (default: a held-out piece of the model's corpus, else silence)",
    )
    parser.add_argument("--num-outputs", type=int, help="pieces to make in one batch (default 1)")
    parser.add_argument("--seed", type=int, help="random seed; the same seed and settings give the same pieces")
    parser.add_argument("--context", choices=CONTEXTS, help="'stateful' or 'window' (default: the model's own)")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="'32' (default) or 'bf16-mixed': bf16 autocast, about 2x faster for window context on CPUs with "
        "bf16 units; a near-tie may then fall the other way",
    )
    parser.add_argument("--tempo", type=float, default=100.0, help="beats per minute of the output (default 100)")
    parser.add_argument("--no-audio", action="store_true", help="skip the WAV")
    parser.add_argument("--soundfont", help="a .sf2 General MIDI SoundFont for the WAV (default: pretty_midi's)")
    parser.set_defaults(run=run_generate)


GENERATION_FLAGS = (
    "length",
    "strategy",
    "temperature",
    "key",
    "scale",
    "choose",
    "threshold",
    "top_k",
    "max_notes",
    "num_outputs",
    "seed",
    "context",
    "precision",
)


def run_generate(args: argparse.Namespace) -> int:
    from musiclstm.generation import generate
    from musiclstm.render import save_pieces

    composition = generate(args.model or bundled_model(), args.primer, **given(args, *GENERATION_FLAGS))
    pieces = save_pieces(composition, args.out, args.tempo, audio=not args.no_audio, soundfont=args.soundfont)
    for piece in pieces:
        statistics = piece["statistics"]
        in_key = statistics["in_key_rate"]
        print(
            f"{piece['files']['midi']}: "
            + (f"{piece['key']}, {in_key:.0%} in key, " if piece["key"] else "")
            + f"{statistics['note_density']:.2f} notes per step, polyphony {statistics['polyphony']:.2f}"
        )
    sources = sorted(set(composition.primer_sources))
    primer = sources[0] if len(sources) == 1 else f"{len(sources)} different ones, named in each piece's JSON"
    print(f"Wrote {len(pieces)} piece(s) to {args.out} (seed {composition.settings['seed']}; primer: {primer})")
    return 0


def add_render_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "render",
        help="render a MIDI file to WAV audio",
        description="Render MIDI to 44.1 kHz WAV with FluidSynth and a General MIDI "
        "SoundFont (pretty_midi's own synthesizer where FluidSynth is missing).",
    )
    parser.add_argument("midi", help="the MIDI file")
    parser.add_argument("wav", help="the WAV file to write")
    parser.add_argument("--soundfont", help="a .sf2 SoundFont (default: pretty_midi's bundled TimGM6mb.sf2)")
    parser.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    from musiclstm.render import render_audio

    synthesizer = render_audio(args.midi, args.wav, args.soundfont)
    print(f"Wrote {args.wav} ({synthesizer})")
    return 0


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="open the studio: compose, look and listen in the browser",
        description="Start the Streamlit studio on this machine. It opens --model first and offers "
        "every model folder under --runs in a picker. Nothing is sent anywhere: usage statistics are off.",
    )
    parser.add_argument("--model", help="a run folder to open first (default: the bundled Bach model)")
    parser.add_argument("--runs", default="runs", help="a folder of run folders to offer as well (default runs)")
    parser.add_argument("--port", type=int, default=8501, help="the port to serve on (default 8501)")
    parser.add_argument("--address", default="localhost", help="the address to serve on (default localhost)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Become the Streamlit server (exec, not a child), so stopping this process stops the page too."""
    from musiclstm.model import read_run_config

    model = args.model or bundled_model()
    read_run_config(model)  # a bad folder is named here, before any page opens
    app = Path(__file__).with_name("app.py")
    command = [sys.executable, "-m", "streamlit", "run", str(app)]
    command += ["--server.port", str(args.port), "--server.address", args.address]
    command += ["--server.headless", str(args.no_browser).lower(), "--browser.gatherUsageStats", "false"]
    command += ["--server.maxUploadSize", "1", "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]
    environment = dict(os.environ, MUSICLSTM_RUNS=args.runs, MUSICLSTM_MODEL=str(model))
    sys.stdout.flush()
    os.execve(sys.executable, command, environment)


def add_export_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="pack a run into a small self-contained model folder (how the bundled model is made)",
        description="Copy a run's config, history and weights (as float16) into --out, with its corpus's "
        "held-out pieces for primers and a MODEL_CARD.md that records the data, training, metrics and checksum.",
    )
    parser.add_argument("--run", dest="run_dir", required=True, help="a run folder made by 'musiclstm train'")
    parser.add_argument("--out", required=True, help="the model folder to write (replaced whole)")
    parser.add_argument("--evaluation", help="a report from 'musiclstm evaluate --json', put in the card")
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    from musiclstm.bundle import export_model

    out = export_model(args.run_dir, args.out, args.evaluation)
    print(f"Wrote {out} ({sum(path.stat().st_size for path in out.rglob('*') if path.is_file()) / 1e6:.1f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musiclstm",
        description="Learn polyphonic music from MIDI piano rolls with a two-layer LSTM, and compose.",
    )
    parser.add_argument("--version", action="version", version=f"musiclstm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_command(commands)
    add_summary_command(commands)
    add_train_command(commands)
    add_evaluate_command(commands)
    add_generate_command(commands)
    add_render_command(commands)
    add_demo_command(commands)
    add_export_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 a user error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.run(args)
    except MusicLSTMError as err:
        print(f"musiclstm: error: {err}", file=sys.stderr)
        return 2


def main_entry() -> None:
    sys.exit(main())
