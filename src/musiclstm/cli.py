"""The `musiclstm` command: a thin layer that turns flags into API calls and results into text.

A command is a `run_<name>` function: its docstring its help, its decorators its flags in help order (`@settings` one
per field of a settings dataclass, None unless given, so only what the user gave overrides the defaults). Progress
bars show on a terminal only (`sys.stderr.isatty()`): in a log file every redraw would be a line.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from dataclasses import replace

import musiclstm

MODEL_HELP = "a run or model folder made by 'musiclstm train' or 'export' (default: the bundled Bach model)"
STUDY_HELP = "a study folder made by 'musiclstm listen prepare'"
given, made = musiclstm.given_settings, musiclstm.settings_from_flags  # what the user gave; its settings object


def with_flag(run, add):
    """Give a run function `add(parser)` before what the decorators below gave, so that they read in help order."""
    run.flags = [add, *getattr(run, "flags", [])]
    return run


def settings(*classes: type, leave_out: tuple[str, ...] = ()):
    """Decorate a run function with a flag per field of each settings dataclass, but those in `leave_out`."""
    return lambda run: with_flag(run, lambda parser: [musiclstm.add_flags(parser, c, leave_out) for c in classes])


def arg(name: str, help: str, **options):
    """Decorate a run function with an argument of its own; a default is shown in the help and gives the type."""
    if "default" in options:
        options, help = {"type": type(options["default"]), **options}, f"{help} (default {options['default']})"
    return lambda run: with_flag(run, lambda parser: parser.add_argument(name, help=help, **options))


@settings(musiclstm.CorpusConfig)
@arg("--out", "the corpus folder to write", required=True)
@arg("--force", "rebuild even if the corpus is up to date", action="store_true")
@arg("--json", "print the summary as JSON", action="store_true")
def run_data(args: argparse.Namespace) -> None:
    """Turn MIDI files, the Bach chorales or a benchmark file into a piano-roll corpus.
    It holds manifest.json and bit-packed rolls; unreadable files are skipped and named, an unchanged source reused."""
    config = made(args, musiclstm.CorpusConfig)
    summary = musiclstm.build_corpus(config, args.out, force=args.force, progress=not args.json and sys.stderr.isatty())
    print(json.dumps(summary, indent=2) if args.json else musiclstm.format_summary(summary))


def model_config(args: argparse.Namespace) -> musiclstm.ModelConfig | None:
    """The preset with the given flags applied; None when the user gave neither (a resumed run keeps its own)."""
    changes = given(args, musiclstm.ModelConfig)
    return replace(musiclstm.MODEL_PRESETS[args.preset or "nade"], **changes) if args.preset or changes else None


preset = arg(
    "--preset",
    "architecture: 'nade' the specification's LSTM 512 x 2 and dense 256 with the NADE head, 'seed' the "
    "specification's exactly (88 independent outputs), 'small' the seed's at 64 x 2, dense 32, for quick runs; "
    "flags below override it (default nade)",
    choices=sorted(musiclstm.MODEL_PRESETS),
)


@arg("--model", "a run or model folder whose network to print (default: --preset and flags)")
@preset
@settings(musiclstm.ModelConfig)
def run_summary(args: argparse.Namespace) -> None:
    """Print a model's layers and its true parameter count: a model folder's, or a preset's and flags'."""
    if args.model and model_config(args):
        raise musiclstm.MusicLSTMError("give either --model or a preset and flags, not both")
    config = musiclstm.load_model(musiclstm.model_folder(args.model)).config if args.model else None
    print(musiclstm.format_network(config or model_config(args) or musiclstm.ModelConfig()))


@arg("--data", "a corpus folder made by 'musiclstm data' (not needed with --resume)")
@arg("--out", "the run folder to write", required=True)
@arg("--resume", "continue the run in --out from its last checkpoint", action="store_true")
@preset
@settings(musiclstm.ModelConfig, musiclstm.TrainConfig)
@arg("--json", "print the result as JSON", action="store_true")
def run_train(args: argparse.Namespace) -> None:
    """Train a model on a corpus.
    On its train split, validated on its valid split, until --max-minutes (or --epochs, or early stopping). The run
    folder gets config.json, model.safetensors (the best validation NLL's weights), history.csv/png and a resume
    checkpoint."""
    bar = not args.json and sys.stderr.isatty()
    options = dict(resume=args.resume, progress=bar, print_epochs=not bar)  # a line per epoch where no bar shows
    result = musiclstm.train(args.data, args.out, model_config(args), **options, **given(args, musiclstm.TrainConfig))
    if result["rank"] == 0:
        print(json.dumps(result, indent=2) if args.json else musiclstm.format_training(result))


@settings(musiclstm.EvaluateConfig)
def run_evaluate(args: argparse.Namespace) -> None:
    """Score a model on a corpus split beside two baselines, and judge generated music.
    Each frame of each piece is predicted from its left context: NLL in nats per frame, frame accuracy TP/(TP+FP+FN),
    precision, recall, F1 and binary accuracy, beside per-key frequency and previous-step baselines fitted on train."""
    request = made(args, musiclstm.EvaluateConfig)
    path = musiclstm.check_output_file(request.json) if request.json else None
    report = musiclstm.evaluate(
        progress=sys.stderr.isatty(), **{key: value for key, value in vars(request).items() if key != "json"}
    )
    if path:
        musiclstm.write_json_atomically(path, report)
    print(musiclstm.format_report(report))


def compose(args: argparse.Namespace, origin, make, *inputs, **options) -> None:
    """Check the settings and output flags, `make` the composition, write and list the pieces, name their `origin`."""
    changes = given(args, musiclstm.GenerationSettings)
    musiclstm.GenerationSettings(**changes)  # checked before the output flags
    output = made(args, musiclstm.OutputConfig)
    musiclstm.check_score_kind(output.score)
    musiclstm.check_pieces_folder(output.out, replace=output.force)
    composition = make(*inputs, progress=sys.stderr.isatty(), **options, **changes)
    saving = dict(audio=not output.no_audio, soundfont=output.soundfont, replace=output.force, score=output.score)
    pieces = musiclstm.save_pieces(composition, output.out, progress=sys.stderr.isatty(), **saving)
    print(musiclstm.format_pieces(pieces))
    print(f"Wrote {len(pieces)} piece(s) to {output.out} (seed {composition.settings['seed']}; {origin(composition)})")


@arg("--model", MODEL_HELP)
@arg("--primer", "a MIDI file to start from (default: held-out music of the model's)")
@settings(musiclstm.GenerationSettings, musiclstm.OutputConfig)
def run_generate(args: argparse.Namespace) -> None:
    """Compose new pieces with a trained model (MIDI, WAV, PNG, JSON).
    Step by step: logits -> temperature -> key mask -> choose notes; each piece written as .mid, .wav, .png, .json."""

    def origin(composition) -> str:
        primers = sorted(set(composition.primer_sources))
        return "primer: " + (
            primers[0] if len(primers) == 1 else f"{len(primers)} different ones, named in each piece's JSON"
        )

    compose(args, origin, musiclstm.generate, args.model, args.primer)


@arg("melody", "a MIDI file: monophonic, or polyphonic (its top line is taken)")
@arg("--model", MODEL_HELP)
@arg("--length", "harmonize only the melody's first LENGTH steps (default: all)", type=int)
@arg("--lookahead", "versions drawn side by side, resampled toward the melody", default=musiclstm.HARMONIZE_LOOKAHEAD)
@settings(musiclstm.GenerationSettings, musiclstm.OutputConfig, leave_out=("length",))
def run_harmonize(args: argparse.Namespace) -> None:
    """Add voices below a melody (its top line kept on top), written like generate's pieces.
    The highest note of each step is forced on and the keys above it off; the model draws the voices below, step by
    step (the melody in red in the PNG)."""
    origin = f"melody: {args.melody}"
    compose(args, lambda _: origin, musiclstm.harmonize, args.melody, args.model, lookahead=args.lookahead)


@arg("piece", "a MIDI file whose bars to rewrite")
@arg("--model", MODEL_HELP)
@arg("--bars", "the bars to rewrite, FIRST-LAST, from 1 on the piece's metre (a pickup is bar 1), both included: 5-8")
@arg("--steps", "the steps to rewrite instead, START-END, from 0, END left out: 64-128")
@arg("--particles", "drafts of the gap drawn side by side per version", default=musiclstm.INFILL_PARTICLES)
@arg("--join", "real steps after the gap that weigh the drafts", default=musiclstm.INFILL_JOIN_STEPS)
@arg("--keep-melody", "keep the gap's top line, rewrite the voices below", action="store_true")
@settings(musiclstm.GenerationSettings, musiclstm.OutputConfig, leave_out=("length",))  # the gap's
def run_infill(args: argparse.Namespace) -> None:
    """Rewrite bars inside a piece, keeping the rest of it as it is, written like generate's pieces.
    The gap (--bars or --steps) is drawn again after the music before it, several drafts side by side; those the model
    finds lead best into the real music after it are kept (the gap shaded in the PNG, the join's NLL in the JSON)."""
    if (args.bars is None) == (args.steps is None):
        raise musiclstm.MusicLSTMError("give the gap as --bars 5-8 (from 1) or --steps 64-128 (from 0, end left out)")
    gap = dict(bars=args.bars, steps=args.steps, particles=args.particles, join_steps=args.join)

    def origin(composition) -> str:
        (start, end), joins = composition.gap, ", ".join(f"{nll:.3f}" for nll in composition.settings["join_nll"])
        return f"steps {start}-{end} of {args.piece} rewritten; join NLL {joins} nats per step"

    compose(args, origin, musiclstm.infill, args.piece, args.model, keep_melody=args.keep_melody, **gap)


@arg("--model", MODEL_HELP)
@arg("--list-ports", "list this machine's MIDI input and output ports, and stop", action="store_true")
@arg("--page", "serve a page with an on-screen keyboard (and Web MIDI) that plays along instead", action="store_true")
@settings(musiclstm.LiveConfig)
@settings(musiclstm.GenerationSettings, leave_out=("length", "num_outputs", "phrase_bars", "precision"))
@settings(musiclstm.ServingConfig)
@arg("--json", "print the performance's report as JSON", action="store_true")
def run_live(args: argparse.Namespace) -> int | None:
    """Play with the model live: it harmonizes your melody as you play, or answers your phrases.
    From a MIDI keyboard or a DAW's port (--input, or --virtual ports) to a synthesizer's (--output), on a step clock
    at --tempo; --play replays a MIDI file as the player and --record writes both parts; Ctrl-C ends it, every note
    off."""
    if args.list_ports:
        ports = musiclstm.list_ports()
        for kind in ("inputs", "outputs"):
            print(f"MIDI {kind}: " + (", ".join(ports[kind]) or "none"))
        return None
    live, changes = made(args, musiclstm.LiveConfig), given(args, musiclstm.GenerationSettings)
    musiclstm.GenerationSettings(**changes)  # checked before the model opens
    if args.page:
        serving = made(args, musiclstm.ServingConfig)
        composer = musiclstm.open_composer(args.model)
        tempo = changes.get("tempo_bpm", musiclstm.GenerationSettings.tempo_bpm)
        return musiclstm.serve_live_page(
            lambda: musiclstm.open_partner(composer, live, **changes),
            tempo,
            serving.port or 8503,
            serving.address,
            not serving.no_browser,
        )
    report = musiclstm.play_live(args.model, live, **changes)
    print(json.dumps(report, indent=2) if args.json else musiclstm.format_performance(report))
    return None


@arg("midi", "the MIDI file")
@arg("wav", "the WAV file to write")
@arg("--soundfont", "a .sf2 SoundFont (default: pretty_midi's bundled TimGM6mb.sf2)")
def run_render(args: argparse.Namespace) -> None:
    """Render a MIDI file to WAV audio.
    At 44.1 kHz with FluidSynth and a General MIDI SoundFont (pretty_midi's synthesizer where FluidSynth is missing)."""
    print(f"Wrote {args.wav} ({musiclstm.render_audio(args.midi, args.wav, args.soundfont)})")


@arg("--model", "a run folder to open first (default: the bundled Bach model)")
@arg("--runs", "a folder of run folders to offer as well", default="runs")
@settings(musiclstm.ServingConfig)
def run_demo(args: argparse.Namespace) -> int:
    """Open the studio: compose, look and listen in the browser.
    On this machine; it opens --model first, offers every model folder under --runs, and sends no usage statistics."""
    model, serving = musiclstm.model_folder(args.model), made(args, musiclstm.ServingConfig)
    musiclstm.read_run_config(model)  # a bad folder is named here, before any page opens
    environment, port = dict(MUSICLSTM_RUNS=args.runs, MUSICLSTM_MODEL=str(model)), serving.port or 8501
    options = ["--server.maxUploadSize", "1"]
    return musiclstm.serve_page(
        musiclstm.STUDIO_PAGE, environment, port, serving.address, not serving.no_browser, options
    )


@settings(musiclstm.StudyConfig)
def run_listen_prepare(args: argparse.Namespace) -> None:
    """Compose and pick the clips, render them alike, and write a study folder.
    --pieces passages of --bars bars by the model's default settings, as many real ones of held-out pieces, rendered
    alike (SoundFont, tempo, velocities, length, loudness) under random ids; the answer key is manifest.json's alone."""
    study = musiclstm.prepare_study(**vars(made(args, musiclstm.StudyConfig)), progress=sys.stderr.isatty())
    serve, key = f"serve it with 'musiclstm listen serve {study.folder}'", "the answer key: keep it from the raters"
    print(f"Wrote a study of {len(study.clip_ids)} clips to {study.folder}; {serve} (its manifest.json is {key})")


@arg("study", STUDY_HELP)
@settings(musiclstm.ServingConfig)
def run_listen_serve(args: argparse.Namespace) -> int:
    """Serve the rating page (localhost unless --address says otherwise).
    Each rater gets an anonymous id in the page's address, may stop and come back; answers go to ratings.sqlite now."""
    study, serving = musiclstm.open_study(args.study), made(args, musiclstm.ServingConfig)  # a bad one named now
    environment, port = dict(MUSICLSTM_STUDY=str(study.folder.resolve())), serving.port or 8502
    return musiclstm.serve_page(musiclstm.LISTENING_PAGE, environment, port, serving.address, not serving.no_browser)


@arg("study", STUDY_HELP)
@arg("--json", "also write the report as JSON to FILE", metavar="FILE")
@arg("--csv", "write every answer as a CSV row to FILE", metavar="FILE")
@arg("--plot", "draw the rating distributions, generated beside real, as a PNG", metavar="FILE")
def run_listen_report(args: argparse.Namespace) -> None:
    """The ratings so far: means with 95% intervals, the 3.5 target, real-or-computer accuracy.
    Per source and question, intervals by bootstrap (raters and clips resampled); the accuracy with a binomial test."""
    report = musiclstm.save_study_report(musiclstm.open_study(args.study), args.json, args.csv, args.plot)
    print(musiclstm.format_study_report(report))


def run_listen(args: argparse.Namespace) -> None:
    """Run a blind listening test: prepare the clips, serve the rating page, report the ratings.
    Raters hear generated and real passages in a random order, rate each 1-5 for musicality, coherence and
    creativity, and guess which are real (the specification's listening test)."""


@settings(musiclstm.ExportConfig)
def run_export(args: argparse.Namespace) -> None:
    """Pack a run into a small self-contained model folder (how the bundled model is made).
    Config, history, float16 weights, held-out pieces for primers, MODEL_CARD.md (data, training, metrics, checksum)."""
    out = musiclstm.export_model(**vars(made(args, musiclstm.ExportConfig)))
    print(f"Wrote {out} ({sum(path.stat().st_size for path in out.rglob('*') if path.is_file()) / 1e6:.1f} MB)")


def add_command(commands: argparse._SubParsersAction, run) -> argparse.ArgumentParser:
    """Add the command that `run_<name>` runs, called <name>, with its help and flags."""
    summary = run.__doc__.partition("\n")[0]
    help_text = summary[0].lower() + summary[1:].rstrip(".").replace("%", "%%")
    name, description = run.__name__.rpartition("_")[2], " ".join(run.__doc__.split())
    parser = commands.add_parser(name, help=help_text, description=description)
    parser.set_defaults(run=run)
    for add in getattr(run, "flags", []):
        add(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musiclstm", description=musiclstm.__doc__.partition("\n")[0])
    parser.add_argument("--version", action="version", version=f"musiclstm {musiclstm.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for run in (run_data, run_summary, run_train, run_evaluate, run_generate, run_harmonize, run_infill, run_render):
        add_command(commands, run)
    add_command(commands, run_live)
    add_command(commands, run_demo)
    steps = add_command(commands, run_listen).add_subparsers(dest="step", required=True, metavar="STEP")
    for run in (run_listen_prepare, run_listen_serve, run_listen_report):
        add_command(steps, run)
    add_command(commands, run_export)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds as after Ctrl-C: temporary files removed."""

    @staticmethod
    def handler(signum: int, frame: object) -> None:
        raise Terminated


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status: 0 ok, 2 a user error (MusicLSTMError), 130 Ctrl-C, 143 SIGTERM."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    # training keeps Lightning's own SIGTERM handling (a checkpoint, then 143)
    on_sigterm = signal.getsignal(signal.SIGTERM) if args.run is run_train else Terminated.handler
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return args.run(args) or 0
    except musiclstm.MusicLSTMError as err:
        print(f"musiclstm: error: {err}", file=sys.stderr)
        return getattr(err, "exit_status", 2)
    except KeyboardInterrupt as stop:
        name, status = ("SIGTERM", 143) if isinstance(stop, Terminated) else ("Ctrl-C", 130)
        print(f"musiclstm: interrupted ({name}); every file written so far is whole", file=sys.stderr)
        return status
    finally:
        signal.signal(signal.SIGTERM, previous)
