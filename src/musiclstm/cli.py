"""The `musiclstm` command: a thin layer that turns flags into API calls and results into text.

Settings flags are made from the settings dataclasses' own fields (type, default, choices and help
in each field's metadata, see `config.setting`), and default to None, so that only what the user
gave overrides the settings object's defaults. User errors (`musiclstm.MusicLSTMError`) are caught once here,
printed as `musiclstm: error: ...`, exit 2; SIGTERM unwinds as Ctrl-C does, with status 143.
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

MODEL_HELP = "a run or model folder made by 'musiclstm train' or 'export' (default: the bundled Bach model)"


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
        shown = meta["default_text"] or (
            None if field.default in (None, MISSING) or field.default is False else field.default
        )
        options = dict(dest=field.name, help=meta["help"] + (f" (default {shown})" if shown is not None else ""))
        if kind is bool:
            action = argparse.BooleanOptionalAction if field.default is True else "store_true"
            options.update(action=action, default=None)
        elif typing.get_origin(kind) is tuple:
            options.update(type=typing.get_args(kind)[0], nargs=len(typing.get_args(kind)))
        else:
            options.update(type=kind, choices=meta["choices"])
        options.update(required=field.default is MISSING, **meta["argparse"])
        parser.add_argument(musiclstm.flag_name(field), **options)


def given(args: argparse.Namespace, settings_class: type) -> dict:
    """The fields of a settings dataclass that the user gave on the command line."""
    return {
        field.name: getattr(args, field.name)
        for field in fields(settings_class)
        if getattr(args, field.name, None) is not None
    }


def show_progress() -> bool:
    """Progress bars only on a terminal: in a log file every redraw would be a line of its own."""
    return sys.stderr.isatty()


def new_command(commands: argparse._SubParsersAction, name: str, run):
    """A subcommand that calls `run(args)`: the first line of its docstring is the command's help, the rest its
    description."""
    summary, _, description = run.__doc__.partition("\n\n")
    help_text = summary[0].lower() + summary[1:].rstrip(".").replace("%", "%%")
    parser = commands.add_parser(name, help=help_text, description=" ".join(description.split()))
    parser.set_defaults(run=run)
    return parser


def run_data(args: argparse.Namespace) -> int:
    """Turn MIDI files, the Bach chorales or a benchmark file into a piano-roll corpus.

    Read a source into a piano-roll corpus folder (manifest.json + bit-packed rolls). Unreadable files are skipped
    and listed with their reason. Re-running on an unchanged source with the same settings reuses it.
    """
    config = musiclstm.CorpusConfig(**given(args, musiclstm.CorpusConfig))
    summary = musiclstm.build_corpus(config, args.out, force=args.force, progress=not args.json and show_progress())
    print(json.dumps(summary, indent=2) if args.json else musiclstm.format_summary(summary))
    return 0


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(musiclstm.MODEL_PRESETS),
        help="architecture: 'nade' the specification's LSTM 512 x 2 and dense 256 with the NADE head, "
        "'seed' the specification's exactly (88 independent outputs), 'small' the seed's at 64 x 2, dense 32, "
        "for quick runs; flags below override it (default nade)",
    )
    add_settings_flags(parser, musiclstm.ModelConfig)


def model_config(args: argparse.Namespace) -> musiclstm.ModelConfig | None:
    """The preset with the given flags applied; None when the user gave neither (a resumed run keeps its own)."""
    changes = given(args, musiclstm.ModelConfig)
    if args.preset is None and not changes:
        return None
    return replace(musiclstm.MODEL_PRESETS[args.preset or "nade"], **changes)


def run_summary(args: argparse.Namespace) -> int:
    """Print a model's layers and its true parameter count.

    Print the layer table and parameter count of a model folder, or of a preset and flags.
    """
    if args.model and model_config(args):
        raise musiclstm.MusicLSTMError("give either --model or a preset and flags, not both")
    config = musiclstm.load_model(musiclstm.model_folder(args.model)).config if args.model else None
    print(musiclstm.format_network(config or model_config(args) or musiclstm.ModelConfig()))
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train a model on a corpus.

    Train on a corpus's train split, validating on its valid split. The run folder gets config.json,
    model.safetensors (the weights of the best validation NLL), history.csv/png and a resume checkpoint. Training
    runs until early stopping or --max-minutes, whichever comes first.
    """
    progress = not args.json and show_progress()
    changes = given(args, musiclstm.TrainConfig)
    result = musiclstm.train(args.data, args.out, model_config(args), resume=args.resume, progress=progress, **changes)
    if result["rank"] == 0:
        print(json.dumps(result, indent=2) if args.json else musiclstm.format_training(result))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Score a model on a corpus split beside two baselines, and judge generated music.

    Predict every frame of every piece of a split from its left context and report negative log-likelihood in nats
    per frame, frame accuracy TP/(TP+FP+FN), precision, recall, F1 and binary accuracy, beside a per-key frequency
    baseline and a per-key previous-step baseline fitted on the train split.
    """
    request = musiclstm.EvaluateConfig(**given(args, musiclstm.EvaluateConfig))
    if request.json:
        musiclstm.check_output_file(request.json)
    options = dict(split=request.split, context=request.context, generated=request.generated, plots=request.plots)
    report = musiclstm.evaluate(request.data, request.model, progress=show_progress(), **options)
    if request.json:
        musiclstm.write_json_atomically(Path(request.json), report)
    print(musiclstm.format_report(report))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    """Compose new pieces with a trained model (MIDI, WAV, PNG, JSON).

    Compose pieces one step at a time: logits -> temperature -> key mask -> choose notes. Each piece is written as
    .mid, .wav, .png and .json in --out.
    """
    settings = musiclstm.GenerationSettings(
        **given(args, musiclstm.GenerationSettings)
    )  # checked before the folder, then composing
    output = checked_output(args)
    composition = musiclstm.generate(args.model, args.primer, progress=show_progress(), **settings.to_dict())
    sources = sorted(set(composition.primer_sources))
    primer = sources[0] if len(sources) == 1 else f"{len(sources)} different ones, named in each piece's JSON"
    save_and_list(composition, output, f"primer: {primer}")
    return 0


def checked_output(args: argparse.Namespace) -> musiclstm.OutputConfig:
    """The output flags, refused before composing where the score cannot be made or the folder not written."""
    output = musiclstm.OutputConfig(**given(args, musiclstm.OutputConfig))
    musiclstm.check_score_kind(output.score)
    musiclstm.check_pieces_folder(output.out, replace=output.force)
    return output


def save_and_list(composition, output: musiclstm.OutputConfig, origin: str) -> None:
    """Write the pieces as the output flags say, and print one line per piece and a summary."""
    options = dict(audio=not output.no_audio, soundfont=output.soundfont, replace=output.force, score=output.score)
    pieces = musiclstm.save_pieces(composition, output.out, progress=show_progress(), **options)
    print(musiclstm.format_pieces(pieces))
    print(f"Wrote {len(pieces)} piece(s) to {output.out} (seed {composition.settings['seed']}; {origin})")


def run_harmonize(args: argparse.Namespace) -> int:
    """Add voices below a melody (its top line kept on top), written like generate's pieces.

    Take the highest note of a MIDI file at each step as the melody, force it on and every key above it off, and let
    the model draw the voices below, step by step. Each version is written as .mid, .wav, .png (the melody in red)
    and .json in --out.
    """
    settings = given(args, musiclstm.GenerationSettings)
    musiclstm.GenerationSettings(**dict(settings, length=settings.get("length", 1)))  # checked before the folder
    output = checked_output(args)
    progress = show_progress()
    composition = musiclstm.harmonize(args.melody, args.model, lookahead=args.lookahead, progress=progress, **settings)
    save_and_list(composition, output, f"melody: {args.melody}")
    return 0


def run_infill(args: argparse.Namespace) -> int:
    """Rewrite bars inside a piece, keeping the rest of it as it is, written like generate's pieces.

    Draw the gap (--bars, or --steps) again as a continuation of the music before it, several drafts side by side,
    and keep the drafts that the model finds lead best into the real music after it. Everything outside the gap is
    the piece's own. Each version is written as .mid, .wav, .png (the gap shaded) and .json (the gap, the drafts and
    the join's NLL) in --out.
    """
    settings = given(args, musiclstm.GenerationSettings)
    musiclstm.GenerationSettings(**settings)  # checked before the folder
    if (args.bars is None) == (args.steps is None):
        raise musiclstm.MusicLSTMError("give the gap as --bars 5-8 (from 1) or --steps 64-128 (from 0, end left out)")
    output = checked_output(args)
    composition = musiclstm.infill(
        args.piece,
        args.model,
        bars=args.bars,
        steps=args.steps,
        particles=args.particles,
        join_steps=args.join,
        keep_melody=args.keep_melody,
        progress=show_progress(),
        **settings,
    )
    start, end = composition.gap
    joins = ", ".join(f"{nll:.3f}" for nll in composition.settings["join_nll"])
    save_and_list(composition, output, f"steps {start}-{end} of {args.piece} rewritten; join NLL {joins} nats per step")
    return 0


def run_render(args: argparse.Namespace) -> int:
    """Render a MIDI file to WAV audio.

    Render MIDI to 44.1 kHz WAV with FluidSynth and a General MIDI SoundFont (pretty_midi's own synthesizer where
    FluidSynth is missing).
    """
    synthesizer = musiclstm.render_audio(args.midi, args.wav, args.soundfont)
    print(f"Wrote {args.wav} ({synthesizer})")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Open the studio: compose, look and listen in the browser.

    Start the Streamlit studio on this machine. It opens --model first and offers every model folder under --runs in
    a picker. Nothing is sent anywhere: usage statistics are off.
    """
    model = musiclstm.model_folder(args.model)
    musiclstm.read_run_config(model)  # a bad folder is named here, before any page opens
    environment = dict(MUSICLSTM_RUNS=args.runs, MUSICLSTM_MODEL=str(model))
    page, options = musiclstm.STUDIO_PAGE, ["--server.maxUploadSize", "1"]
    serving = musiclstm.ServingConfig(**given(args, musiclstm.ServingConfig))
    return musiclstm.serve_page(
        page, environment, serving.port or 8501, serving.address, not serving.no_browser, options
    )


def add_listen_command(commands: argparse._SubParsersAction) -> None:
    """Run a blind listening test: prepare the clips, serve the rating page, report the ratings.

    The specification's listening test: raters hear generated and real passages in a random order, rate each 1-5
    for musicality, coherence and creativity, and guess which are real.
    """
    steps = new_command(commands, "listen", add_listen_command).add_subparsers(
        dest="step", required=True, metavar="STEP"
    )
    prepare = new_command(steps, "prepare", run_listen_prepare)
    add_settings_flags(prepare, musiclstm.StudyConfig)
    serve = new_command(steps, "serve", run_listen_serve)
    serve.add_argument("study", help="a study folder made by 'musiclstm listen prepare'")
    add_settings_flags(serve, musiclstm.ServingConfig)
    report = new_command(steps, "report", run_listen_report)
    report.add_argument("study", help="a study folder made by 'musiclstm listen prepare'")
    report.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    report.add_argument("--csv", metavar="FILE", help="write every answer as a CSV row to FILE")
    report.add_argument("--plot", metavar="FILE", help="draw the rating distributions, generated beside real, as a PNG")


def run_listen_prepare(args: argparse.Namespace) -> int:
    """Compose and pick the clips, render them alike, and write a study folder.

    Compose --pieces passages of --bars bars with the model's default settings and pick as many real passages of
    held-out pieces; render all alike (same SoundFont, tempo, velocities, length and loudness) under random ids. The
    answer key stays in the folder's manifest.json, never served.
    """
    study = musiclstm.prepare_study(
        **vars(musiclstm.StudyConfig(**given(args, musiclstm.StudyConfig))), progress=show_progress()
    )
    print(
        f"Wrote a study of {len(study.clip_ids)} clips to {study.folder}; serve it with "
        f"'musiclstm listen serve {study.folder}' (its manifest.json is the answer key: keep it from the raters)"
    )
    return 0


def run_listen_serve(args: argparse.Namespace) -> int:
    """Serve the rating page (localhost unless --address says otherwise).

    Serve the blind rating page of a study. Each rater gets an anonymous id in the page's address and can stop and
    come back; every answer is stored in the study's ratings.sqlite at once.
    """
    study = musiclstm.open_study(args.study)  # a bad folder or database is named here, before any page opens
    environment = dict(MUSICLSTM_STUDY=str(study.folder.resolve()))
    serving = musiclstm.ServingConfig(**given(args, musiclstm.ServingConfig))
    port, browser = serving.port or 8502, not serving.no_browser
    return musiclstm.serve_page(musiclstm.LISTENING_PAGE, environment, port, serving.address, browser)


def run_listen_report(args: argparse.Namespace) -> int:
    """The ratings so far: means with 95% intervals, the 3.5 target, real-or-computer accuracy.

    Report a study's ratings per source and question with bootstrap intervals (raters and clips resampled), the
    specification's target, and the real-or-computer accuracy with a binomial test.
    """
    report = musiclstm.save_study_report(musiclstm.open_study(args.study), args.json, args.csv, args.plot)
    print(musiclstm.format_study_report(report))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Pack a run into a small self-contained model folder (how the bundled model is made).

    Copy a run's config, history and weights (as float16) into --out, with its corpus's held-out pieces for primers
    and a MODEL_CARD.md that records the data, training, metrics and checksum.
    """
    out = musiclstm.export_model(**vars(musiclstm.ExportConfig(**given(args, musiclstm.ExportConfig))))
    print(f"Wrote {out} ({sum(path.stat().st_size for path in out.rglob('*') if path.is_file()) / 1e6:.1f} MB)")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Every command but `listen`, whose steps are commands of their own."""
    data = new_command(commands, "data", run_data)
    add_settings_flags(data, musiclstm.CorpusConfig)
    data.add_argument("--out", required=True, help="the corpus folder to write")
    data.add_argument("--force", action="store_true", help="rebuild even if the corpus is up to date")
    data.add_argument("--json", action="store_true", help="print the summary as JSON")

    summary = new_command(commands, "summary", run_summary)
    summary.add_argument("--model", help="a run or model folder whose network to print (default: --preset and flags)")
    add_model_flags(summary)

    train = new_command(commands, "train", run_train)
    train.add_argument("--data", help="a corpus folder made by 'musiclstm data' (not needed with --resume)")
    train.add_argument("--out", required=True, help="the run folder to write")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    add_model_flags(train)
    add_settings_flags(train, musiclstm.TrainConfig)
    train.add_argument("--json", action="store_true", help="print the result as JSON")

    evaluate = new_command(commands, "evaluate", run_evaluate)
    add_settings_flags(evaluate, musiclstm.EvaluateConfig)

    generate = new_command(commands, "generate", run_generate)
    generate.add_argument("--model", help=MODEL_HELP)
    generate.add_argument("--primer", help="a MIDI file to start from (default: held-out music of the model's)")
    add_settings_flags(generate, musiclstm.GenerationSettings)
    add_settings_flags(generate, musiclstm.OutputConfig)

    harmonize = new_command(commands, "harmonize", run_harmonize)
    harmonize.add_argument("melody", help="a MIDI file: monophonic, or polyphonic (its top line is taken)")
    harmonize.add_argument("--model", help=MODEL_HELP)
    harmonize.add_argument("--length", type=int, help="harmonize only the melody's first LENGTH steps (default: all)")
    lookahead = f"versions drawn side by side, resampled toward the melody (default {musiclstm.HARMONIZE_LOOKAHEAD})"
    harmonize.add_argument("--lookahead", type=int, default=musiclstm.HARMONIZE_LOOKAHEAD, help=lookahead)
    add_settings_flags(harmonize, musiclstm.GenerationSettings, leave_out=("length",))
    add_settings_flags(harmonize, musiclstm.OutputConfig)

    infill = new_command(commands, "infill", run_infill)
    infill.add_argument("piece", help="a MIDI file whose bars to rewrite")
    infill.add_argument("--model", help=MODEL_HELP)
    infill.add_argument(
        "--bars",
        help="the bars to rewrite, FIRST-LAST, counted from 1 on the piece's metre "
        "(a pickup is bar 1), both included: 5-8",
    )
    infill.add_argument("--steps", help="the steps to rewrite instead, START-END, from 0, END left out: 64-128")
    particles = f"drafts of the gap drawn side by side per version (default {musiclstm.INFILL_PARTICLES})"
    infill.add_argument("--particles", type=int, default=musiclstm.INFILL_PARTICLES, help=particles)
    join = f"real steps after the gap that weigh the drafts (default {musiclstm.INFILL_JOIN_STEPS})"
    infill.add_argument("--join", type=int, default=musiclstm.INFILL_JOIN_STEPS, help=join)
    infill.add_argument("--keep-melody", action="store_true", help="keep the gap's top line, rewrite the voices below")
    add_settings_flags(infill, musiclstm.GenerationSettings, leave_out=("length",))
    add_settings_flags(infill, musiclstm.OutputConfig)

    render = new_command(commands, "render", run_render)
    render.add_argument("midi", help="the MIDI file")
    render.add_argument("wav", help="the WAV file to write")
    render.add_argument("--soundfont", help="a .sf2 SoundFont (default: pretty_midi's bundled TimGM6mb.sf2)")

    demo = new_command(commands, "demo", run_demo)
    demo.add_argument("--model", help="a run folder to open first (default: the bundled Bach model)")
    demo.add_argument("--runs", default="runs", help="a folder of run folders to offer as well (default runs)")
    add_settings_flags(demo, musiclstm.ServingConfig)

    add_listen_command(commands)

    export = new_command(commands, "export", run_export)
    add_settings_flags(export, musiclstm.ExportConfig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musiclstm", description="Learn polyphonic music from MIDI piano rolls with a two-layer LSTM, and compose."
    )
    parser.add_argument("--version", action="version", version=f"musiclstm {musiclstm.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
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
    except musiclstm.MusicLSTMError as err:
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
