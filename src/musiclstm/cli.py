"""The `musiclstm` command: a thin layer that turns flags into API calls and results into text.

Settings flags are made from the settings dataclasses' own fields (type, default, choices and help
in each field's metadata, see `config.setting`), and default to None, so that only what the user
gave overrides the settings object's defaults. User errors (`MusicLSTMError`) are caught once here,
printed as `musiclstm: error: ...`, exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import types
import typing
from dataclasses import MISSING, fields, replace
from pathlib import Path

import musiclstm
from musiclstm import (
    CONTEXTS,
    MODEL_PRESETS,
    SPLITS,
    CorpusConfig,
    GenerationSettings,
    ModelConfig,
    MusicLSTMError,
    TrainConfig,
    flag_name,
)


def add_settings_flags(parser: argparse.ArgumentParser, settings_class: type, leave_out: tuple[str, ...] = ()) -> None:
    """One flag per field of a settings dataclass that has help text: `--lstm-units` for `lstm_units`.

    The type comes from the annotation (`int | None` gives int, a bool gives a switch, a tuple of n
    floats n values), the help from the metadata, with the default shown; a field without a default
    is a required flag.
    """
    hints = typing.get_type_hints(settings_class)
    for field in fields(settings_class):
        meta = field.metadata
        if not meta.get("help") or field.name in leave_out:
            continue
        kind = hints[field.name]
        if isinstance(kind, types.UnionType):  # X | None
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        shown = meta["default_text"] or (None if field.default in (None, MISSING) else field.default)
        options = dict(dest=field.name, help=meta["help"] + (f" (default {shown})" if shown is not None else ""))
        if kind is bool:
            action = argparse.BooleanOptionalAction if field.default is True else "store_true"
            options.update(action=action, default=None)
        elif typing.get_origin(kind) is tuple:
            options.update(type=typing.get_args(kind)[0], nargs=len(typing.get_args(kind)))
        else:
            options.update(type=kind, choices=meta["choices"])
        options.update(required=field.default is MISSING, **meta["argparse"])
        parser.add_argument(flag_name(field), **options)


def show_progress() -> bool:
    """Progress bars only on a terminal: in a log file every redraw would be a line of its own."""
    return sys.stderr.isatty()


def given(args: argparse.Namespace, settings_class: type) -> dict:
    """The fields of a settings dataclass that the user gave on the command line."""
    return {
        field.name: getattr(args, field.name)
        for field in fields(settings_class)
        if getattr(args, field.name, None) is not None
    }


def add_data_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "data",
        help="turn MIDI files, the Bach chorales or a benchmark file into a piano-roll corpus",
        description="Read a source into a piano-roll corpus folder (manifest.json + bit-packed rolls). "
        "Unreadable files are skipped and listed with their reason. Re-running on an unchanged source "
        "with the same settings reuses the corpus.",
    )
    add_settings_flags(parser, CorpusConfig)
    parser.add_argument("--out", required=True, help="the corpus folder to write")
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus is up to date")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run_data)


def run_data(args: argparse.Namespace) -> int:
    config = CorpusConfig(**given(args, CorpusConfig))
    summary = musiclstm.build_corpus(config, args.out, force=args.force, progress=not args.json and show_progress())
    print(json.dumps(summary, indent=2) if args.json else musiclstm.format_summary(summary))
    return 0


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(MODEL_PRESETS),
        help="architecture: 'nade' the specification's LSTM 512 x 2 and dense 256 with the NADE head, "
        "'seed' the specification's exactly (88 independent outputs), 'small' the seed's at 64 x 2, dense 32, "
        "for quick runs; flags below override it (default nade)",
    )
    add_settings_flags(parser, ModelConfig)


def model_config(args: argparse.Namespace) -> ModelConfig | None:
    """The preset with the given flags applied; None when the user gave neither (a resumed run keeps its own)."""
    changes = given(args, ModelConfig)
    if args.preset is None and not changes:
        return None
    return replace(MODEL_PRESETS[args.preset or "nade"], **changes)


def add_summary_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "summary",
        help="print a model's layers and its true parameter count",
        description="Print the layer table and parameter count of a model folder, or of a preset and flags.",
    )
    parser.add_argument("--model", help="a run or model folder whose network to print (default: --preset and flags)")
    add_model_flags(parser)
    parser.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    if args.model and model_config(args):
        raise MusicLSTMError("give either --model or a preset and flags, not both")
    config = musiclstm.load_model(musiclstm.model_folder(args.model)).config if args.model else None
    config = config or model_config(args) or ModelConfig()
    print(f"{'layer':<30} {'output shape':<18} {'parameters':>12}")
    for layer, shape, count in musiclstm.summary_rows(config):
        print(f"{layer:<30} {shape:<18} {count:>12,}")
    if config.head != "independent":
        print("\nThe NADE head follows RNN-NADE (Boulanger-Lewandowski 2012); the specification has no Keras twin.")
        return 0
    print(
        f"\nKeras counts {musiclstm.keras_parameter_count(config):,} for this network: PyTorch's LSTM keeps two "
        "bias vectors per layer (input and recurrent) where Keras keeps one, 4 x units more per layer.\n"
        "The specification's table (6,451,624) does not match its own architecture."
    )
    return 0


def add_train_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train a model on a corpus",
        description="Train on a corpus's train split, validating on its valid split. The run folder gets "
        "config.json, model.safetensors (the weights of the best validation NLL), history.csv/png and a resume "
        "checkpoint. Training runs until early stopping or --max-minutes, whichever comes first.",
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
    add_settings_flags(parser, TrainConfig)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    result = musiclstm.train(
        args.data,
        args.out,
        model_config(args),
        resume=args.resume,
        progress=not args.json and show_progress(),
        **given(args, TrainConfig),
    )
    if result["rank"] != 0:
        return 0
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"Trained {result['epochs']} epochs in {result['seconds']} s, ended by {result['ended_by']}: "
            f"best validation NLL {result['best_val_nll']:.3f} nats per frame (val_loss {result['best_val_loss']:.4f})."
            f" Model in {result['run']}"
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
    if args.json:
        musiclstm.check_output_file(args.json)
    report = musiclstm.evaluate(
        args.data, args.model, args.split, args.context, args.generated, args.plots, show_progress()
    )
    if args.json:
        musiclstm.write_json_atomically(Path(args.json), report)
    print(musiclstm.format_report(report))
    return 0


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out", help="folder for the pieces (default ./out)")
    parser.add_argument("--no-audio", action="store_true", help="skip the WAV")
    parser.add_argument("--force", action="store_true", help="replace the pieces of an earlier run in --out")
    parser.add_argument("--soundfont", help="a .sf2 General MIDI SoundFont for the WAV (default: pretty_midi's)")
    parser.add_argument(
        "--score",
        nargs="?",
        const="musicxml",
        choices=musiclstm.SCORE_KINDS,
        help="also write sheet music: piece_N.musicxml (a piano grand staff); '--score pdf' engraves a PDF too, "
        "with LilyPond or MuseScore",
    )


def add_generate_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate",
        help="compose new pieces with a trained model (MIDI, WAV, PNG, JSON)",
        description="Compose pieces one step at a time: logits -> temperature -> key mask -> choose notes. "
        "Each piece is written as .mid, .wav, .png and .json in --out.",
    )
    parser.add_argument("--model", help="a run folder made by 'musiclstm train' (default: the bundled Bach model)")
    parser.add_argument(
        "--primer",
        help="a MIDI file the pieces start from (default: a held-out piece of the model's corpus, else silence)",
    )
    add_settings_flags(parser, GenerationSettings)
    add_output_flags(parser)
    parser.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    settings = GenerationSettings(**given(args, GenerationSettings))  # checked before the folder, then composing
    musiclstm.check_score_kind(args.score)
    musiclstm.check_pieces_folder(args.out, replace=args.force)
    composition = musiclstm.generate(args.model, args.primer, progress=show_progress(), **settings.to_dict())
    sources = sorted(set(composition.primer_sources))
    primer = sources[0] if len(sources) == 1 else f"{len(sources)} different ones, named in each piece's JSON"
    save_and_list(composition, args, f"primer: {primer}")
    return 0


def save_and_list(composition, args: argparse.Namespace, origin: str) -> None:
    """Write the pieces as --out and the output flags say, and print one line per piece and a summary."""
    pieces = musiclstm.save_pieces(
        composition,
        args.out,
        audio=not args.no_audio,
        soundfont=args.soundfont,
        replace=args.force,
        score=args.score,
        progress=show_progress(),
    )
    for piece in pieces:
        statistics = piece["statistics"]
        in_key = statistics["in_key_rate"]
        print(
            f"{piece['files']['midi']}: "
            + (f"{piece['key']}, {in_key:.0%} in key, " if piece["key"] else "")
            + f"{statistics['note_density']:.2f} notes per step, polyphony {statistics['polyphony']:.2f}"
        )
    print(f"Wrote {len(pieces)} piece(s) to {args.out} (seed {composition.settings['seed']}; {origin})")


def add_harmonize_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "harmonize",
        help="add voices below a melody (its top line kept on top), written like generate's pieces",
        description="Take the highest note of a MIDI file at each step as the melody, force it on and every key "
        "above it off, and let the model draw the voices below, step by step. Each version is written as .mid, "
        ".wav, .png (the melody in red) and .json in --out.",
    )
    parser.add_argument("melody", help="a MIDI file: monophonic, or polyphonic (its top line is taken)")
    parser.add_argument("--model", help="a run folder made by 'musiclstm train' (default: the bundled Bach model)")
    parser.add_argument("--length", type=int, help="harmonize only the melody's first LENGTH steps (default: all)")
    parser.add_argument(
        "--lookahead",
        type=int,
        default=musiclstm.HARMONIZE_LOOKAHEAD,
        help="harmonizations drawn side by side per version and resampled by how well each leads to the "
        f"melody's next note (a particle filter; helps with --choose sample) (default {musiclstm.HARMONIZE_LOOKAHEAD})",
    )
    add_settings_flags(parser, GenerationSettings, leave_out=("length",))
    add_output_flags(parser)
    parser.set_defaults(run=run_harmonize)


def run_harmonize(args: argparse.Namespace) -> int:
    settings = given(args, GenerationSettings)
    GenerationSettings(**dict(settings, length=settings.get("length", 1)))  # checked before the folder
    musiclstm.check_score_kind(args.score)
    musiclstm.check_pieces_folder(args.out, replace=args.force)
    composition = musiclstm.harmonize(
        args.melody, args.model, lookahead=args.lookahead, progress=show_progress(), **settings
    )
    save_and_list(composition, args, f"melody: {args.melody}")
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
    synthesizer = musiclstm.render_audio(args.midi, args.wav, args.soundfont)
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
    add_serving_flags(parser, 8501)
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    model = musiclstm.model_folder(args.model)
    musiclstm.read_run_config(model)  # a bad folder is named here, before any page opens
    environment = dict(MUSICLSTM_RUNS=args.runs, MUSICLSTM_MODEL=str(model))
    page, options = musiclstm.STUDIO_PAGE, ["--server.maxUploadSize", "1"]
    return musiclstm.serve_page(page, environment, args.port, args.address, not args.no_browser, options)


def add_serving_flags(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument("--port", type=int, default=port, help=f"the port to serve on (default {port})")
    parser.add_argument(
        "--address",
        default="localhost",
        help="the address to serve on (default localhost: this machine only; 0.0.0.0 opens it to the local network)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")


def add_listen_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "listen",
        help="run a blind listening test: prepare the clips, serve the rating page, report the ratings",
        description="The specification's listening test: raters hear generated and real passages in a random "
        "order, rate each 1-5 for musicality, coherence and creativity, and guess which are real.",
    )
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")
    prepare = steps.add_parser(
        "prepare",
        help="compose and pick the clips, render them alike, and write a study folder",
        description="Compose --pieces passages of --bars bars with the model's default settings and pick as "
        "many real passages of held-out pieces; render all alike (same SoundFont, tempo, velocities, length and "
        "loudness) under random ids. The answer key stays in the folder's manifest.json, never served.",
    )
    prepare.add_argument("--model", help="a run folder made by 'musiclstm train' (default: the bundled Bach model)")
    prepare.add_argument("--data", help="the corpus whose held-out pieces give the real clips (default: the model's)")
    prepare.add_argument("--out", required=True, help="the study folder to write (must not exist or be empty)")
    prepare.add_argument("--pieces", type=int, default=20, help="generated clips, and as many real (default 20)")
    prepare.add_argument("--bars", type=int, default=16, help="bars per clip (default 16)")
    prepare.add_argument("--seed", type=int, help="random seed of the music and the real passages (default: drawn)")
    prepare.add_argument("--real-name", help="who made the real music, for 'X or computer?' (default: the corpus's)")
    prepare.add_argument("--soundfont", help="a .sf2 General MIDI SoundFont (default: pretty_midi's)")
    prepare.set_defaults(run=run_listen_prepare)
    serve = steps.add_parser(
        "serve",
        help="serve the rating page (localhost unless --address says otherwise)",
        description="Serve the blind rating page of a study. Each rater gets an anonymous id in the page's "
        "address and can stop and come back; every answer is stored in the study's ratings.sqlite at once.",
    )
    serve.add_argument("study", help="a study folder made by 'musiclstm listen prepare'")
    add_serving_flags(serve, 8502)
    serve.set_defaults(run=run_listen_serve)
    report = steps.add_parser(
        "report",
        help="the ratings so far: means with 95%% intervals, the 3.5 target, real-or-computer accuracy",
        description="Report a study's ratings per source and question with bootstrap intervals (raters and clips "
        "resampled), the specification's target, and the real-or-computer accuracy with a binomial test.",
    )
    report.add_argument("study", help="a study folder made by 'musiclstm listen prepare'")
    report.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    report.add_argument("--csv", metavar="FILE", help="write every answer as a CSV row to FILE")
    report.add_argument("--plot", metavar="FILE", help="draw the rating distributions, generated beside real, as a PNG")
    report.set_defaults(run=run_listen_report)


def run_listen_prepare(args: argparse.Namespace) -> int:
    study = musiclstm.prepare_study(
        args.out, args.model, args.data, args.pieces, args.bars, args.seed, args.real_name, args.soundfont, True
    )
    print(
        f"Wrote a study of {len(study.clip_ids)} clips to {study.folder}; serve it with "
        f"'musiclstm listen serve {study.folder}' (its manifest.json is the answer key: keep it from the raters)"
    )
    return 0


def run_listen_serve(args: argparse.Namespace) -> int:
    study = musiclstm.open_study(args.study)  # a bad folder or database is named here, before any page opens
    environment = dict(MUSICLSTM_STUDY=str(study.folder.resolve()))
    return musiclstm.serve_page(musiclstm.LISTENING_PAGE, environment, args.port, args.address, not args.no_browser)


def run_listen_report(args: argparse.Namespace) -> int:
    for path in (args.json, args.csv, args.plot):
        if path:
            musiclstm.check_output_file(path)
    study = musiclstm.open_study(args.study)
    report = musiclstm.study_report(study)
    if args.json:
        musiclstm.write_json_atomically(Path(args.json), report)
    if args.csv:
        musiclstm.write_ratings_csv(study, args.csv)
    if args.plot:
        musiclstm.plot_ratings(study, args.plot)
    print(musiclstm.format_study_report(report))
    return 0


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
    parser.add_argument("--name", help="the model card's title (default: from the corpus)")
    parser.add_argument(
        "--made-by", help="Markdown naming the command that made the run (default: its musiclstm train command)"
    )
    parser.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    out = musiclstm.export_model(args.run_dir, args.out, args.evaluation, args.name, args.made_by)
    print(f"Wrote {out} ({sum(path.stat().st_size for path in out.rglob('*') if path.is_file()) / 1e6:.1f} MB)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musiclstm",
        description="Learn polyphonic music from MIDI piano rolls with a two-layer LSTM, and compose.",
    )
    parser.add_argument("--version", action="version", version=f"musiclstm {musiclstm.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        add_data_command,
        add_summary_command,
        add_train_command,
        add_evaluate_command,
        add_generate_command,
        add_harmonize_command,
        add_render_command,
        add_demo_command,
        add_listen_command,
        add_export_command,
    ):
        add_command(commands)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds as after Ctrl-C: temporary files removed."""


def raise_terminated(signum: int, frame: types.FrameType | None) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 a user error, 130 or 143 stopped by a signal)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    # training keeps Lightning's own SIGTERM handling (a checkpoint, then 143)
    on_sigterm = signal.getsignal(signal.SIGTERM) if args.run is run_train else raise_terminated
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return args.run(args)
    except MusicLSTMError as err:
        print(f"musiclstm: error: {err}", file=sys.stderr)
        return getattr(err, "exit_status", 2)
    except KeyboardInterrupt as stop:
        name, status = ("SIGTERM", 143) if isinstance(stop, Terminated) else ("Ctrl-C", 130)
        print(f"musiclstm: interrupted ({name}); every file written so far is whole", file=sys.stderr)
        return status
    finally:
        signal.signal(signal.SIGTERM, previous)


def main_entry() -> None:
    sys.exit(main())
