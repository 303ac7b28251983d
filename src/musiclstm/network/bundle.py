"""Pack a trained run into a small self-contained model folder, with a model card of its own facts.

A packed folder holds config.json (its corpus path made relative), model.safetensors in float16
(half the size, read back as float32), history.csv and history.png, `corpus/` (the run's corpus,
every split, so that primers, comparisons and the check of what a piece copies from the training
pieces work without the original; folders exported before kept only `held_out/`), the
evaluation JSON when one is given, and MODEL_CARD.md written from all of those (corpus, grid,
split, training, history, evaluation, the generation settings judged), with the weights' SHA-256
so that a changed model is a deliberate change. Nothing here imports Lightning.

The folder records no path of the machine it was made on: a path inside the current folder is kept
relative to it, one elsewhere by its name alone, in the card, its commands, config.json, the corpus
manifest and the evaluation report; the card's commands build the corpus and train the run again.
"""

from __future__ import annotations

import hashlib
import platform
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from musiclstm.config import CorpusConfig, GenerationSettings, ModelConfig, TrainConfig, flag_name
from musiclstm.data.corpus import load_corpus, write_corpus
from musiclstm.data.sources import BACH
from musiclstm.files import check_output_folder, read_json_object, write_bytes_atomically, write_json_atomically
from musiclstm.network.run import (
    CONFIG_FILE,
    HISTORY_CSV,
    HISTORY_PNG,
    WEIGHTS_FILE,
    model_config_of,
    read_history,
    read_run_config,
)

CORPUS_FOLDER = "corpus"
EVALUATION = "evaluation.json"
MODEL_CARD = "MODEL_CARD.md"
GRIDS = {1: "quarter notes", 2: "eighth notes", 3: "eighth-note triplets", 4: "sixteenth notes", 8: "32nd notes"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cpu_name() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def export_model(
    run_dir: str | Path,
    out: str | Path,
    evaluation: str | Path | None = None,
    name: str | None = None,
    made_by: str | None = None,
) -> Path:
    """Pack the run in `run_dir` into `out` (replaced whole, never left half-written); return `out`.

    `name` titles the model card (default: from the corpus, "a model of the Bach chorales");
    `made_by` is the Markdown the card gives as the command that made the run (default: the
    `musiclstm train` command its config.json describes).

    Raises:
        MusicLSTMError: the run, its corpus or the evaluation file cannot be read.
    """
    run_dir, out = Path(run_dir), check_output_folder(out)
    run_config = read_run_config(run_dir)
    corpus = load_corpus(run_config["data"]["corpus"])
    report = read_json_object(Path(evaluation)) if evaluation else None
    corpus_path = run_config["data"]["corpus"]
    made_by = made_by or f"{data_command(corpus, corpus_path)}, then {train_command(run_config, run_dir)}"
    facts = CardFacts(run_config, corpus, read_history(run_dir), report, name, made_by)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as scratch:
        staged = Path(scratch) / out.name
        staged.mkdir()
        weights = {name: tensor.to(torch.float16) for name, tensor in load_file(run_dir / WEIGHTS_FILE).items()}
        write_bytes_atomically(staged / WEIGHTS_FILE, save(weights))
        manifest = dict(corpus.manifest)
        for key in ("format_version", "musiclstm_version", "rolls_file", "total_frames", "pieces", "skipped"):
            manifest.pop(key, None)
        write_corpus(
            staged / CORPUS_FOLDER,
            [piece.piece for piece in corpus],
            [piece.split for piece in corpus],
            dict(manifest, source=portable_path(corpus.source), copied_from=portable_path(corpus_path)),
        )
        data = dict(run_config["data"], corpus=CORPUS_FOLDER, source=portable_path(run_config["data"]["source"]))
        config = dict(run_config, data=data)
        write_json_atomically(staged / CONFIG_FILE, config)
        for file in (HISTORY_CSV, HISTORY_PNG):
            shutil.copy2(run_dir / file, staged / file)
        if report is not None:
            write_json_atomically(staged / EVALUATION, portable_report(report))
        card = model_card(facts, sha256(staged / WEIGHTS_FILE))
        write_bytes_atomically(staged / MODEL_CARD, card.encode("utf-8"))
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def portable_path(path: str | Path) -> str:
    """A path as an exported folder records it: relative to the current folder when inside it, else its name alone.

    A relative path, or a source name such as `bach`, is kept as it is.
    """
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


def portable_report(value: object) -> object:
    """An evaluation report with every absolute path in it (model, corpus, plots, the settings' model and primer)
    as `portable_path` gives it."""
    if isinstance(value, dict):
        return {key: portable_report(item) for key, item in value.items()}
    if isinstance(value, list):
        return [portable_report(item) for item in value]
    return portable_path(value) if isinstance(value, str) and Path(value).is_absolute() else value


def flag_value(value: object) -> str:
    return " ".join(str(item) for item in value) if isinstance(value, (list, tuple)) else str(value)


def changed_flags(values: dict, defaults: object) -> list[str]:
    """`--flag value` for each setting in `values` that has a flag and differs from the `defaults` object's."""
    flags = []
    for field in fields(defaults):
        if (
            not field.metadata.get("help")
            or field.name not in values
            or values[field.name] == getattr(defaults, field.name)
        ):
            continue
        flag = flag_name(field)
        flags.append(flag if values[field.name] is True else f"{flag} {flag_value(values[field.name])}")
    return flags


def data_command(corpus, corpus_path: str | Path) -> str:
    """The `musiclstm data` command that builds `corpus` again at `corpus_path`, as Markdown code, paths portable."""
    manifest = corpus.manifest
    values = {name: manifest[name] for name in ("steps_per_beat", "seed", "limit") if name in manifest}
    if "split_fractions" in manifest:
        values["split_fractions"] = tuple(manifest["split_fractions"])  # JSON gave a list; the settings hold a tuple
    flags = changed_flags(values, CorpusConfig(source=corpus.source))
    source, out = shlex.quote(portable_path(corpus.source)), shlex.quote(portable_path(corpus_path))
    command = f"musiclstm data --source {source} --out {out}"
    return f"`{' '.join([command, *flags])}`"


def train_command(run_config: dict, run_dir: Path) -> str:
    """The `musiclstm train` command that config.json describes, as Markdown code, paths portable."""
    train = run_config["train"]
    seed_defaults = TrainConfig(objective=train.get("objective", "all")).resolved()
    flags = changed_flags(model_config_of(run_config).to_dict(), ModelConfig()) + changed_flags(train, seed_defaults)
    data, out = shlex.quote(portable_path(run_config["data"]["corpus"])), shlex.quote(portable_path(run_dir))
    command = f"musiclstm train --data {data} --out {out}"
    return f"`{' '.join([command, *flags])}`"


@dataclass(frozen=True)
class CardFacts:
    """What a model card says, all read from the run: its config.json, corpus, history and evaluation."""

    run_config: dict
    corpus: object
    history: list[dict]
    report: dict | None
    name: str | None
    made_by: str

    @property
    def is_bach(self) -> bool:
        return self.corpus.manifest.get("source_kind") == BACH

    @property
    def pieces_noun(self) -> str:
        return "chorales" if self.is_bach else "pieces"

    @property
    def title(self) -> str:
        if self.name:
            return self.name
        return "a model of the Bach chorales" if self.is_bach else f"a model of {Path(self.corpus.source).name}"


def model_card(facts: CardFacts, weights_sha256: str) -> str:
    """MODEL_CARD.md: data, split, command, time and machine, metrics, limits, checksum."""
    corpus, run_config, history = facts.corpus, facts.run_config, facts.history
    counts = {split: len(corpus.split(split)) for split in ("train", "valid", "test")}
    frames = {split: sum(piece.frames for piece in corpus.split(split)) for split in counts}
    best = min(history, key=lambda row: row["val_nll"]) if history else None
    model, train = run_config["model"], run_config["train"]
    grid = GRIDS.get(corpus.steps_per_beat)
    split_seed = (
        f"seed {corpus.manifest.get('seed')}, by piece"
        if corpus.manifest.get("seed") is not None
        else "the source's own"
    )
    lines = [
        f"# Model card: {facts.title}",
        "",
        "## Data",
        f"- Source: `{portable_path(corpus.source)}` ({corpus.manifest.get('source_kind')}), "
        f"{corpus.steps_per_beat} steps per beat{f' ({grid})' if grid else ''}, "
        "all parts merged onto the 88 piano keys.",
        f"- Split ({split_seed}): "
        + ", ".join(f"{split} {counts[split]} pieces / {frames[split]:,} frames" for split in counts),
        f"- `{CORPUS_FOLDER}/` keeps the corpus: valid and test pieces for primers and comparisons, train pieces "
        "to tell what a generated piece copies.",
        "",
        "## Model and training",
        f"- LSTM {model['lstm_units']} x 2, dense {model['dense_units']}, window {model['window']}; "
        f"dropout {model['input_dropout']} / {model['recurrent_dropout']} / {model['dense_dropout']}; "
        + head_phrase(model),
        f"- Objective `{train['objective']}` (chunk {train['chunk']}), batch {train['batch_size']}, Adam lr "
        f"{train['lr']}, {'' if is_nade(model) else 'pos_weight ' + str(train['pos_weight']) + ', '}"
        f"precision {train['precision']}, seed {train['seed']}, "
        + (f"at most {train['epochs']} epochs." if train.get("epochs") else "until early stopping or the time budget."),
        f"- Command: {facts.made_by}; torch {run_config['torch_version']}.",
    ]
    if best is not None:
        lines.append(
            f"- {len(history)} epochs in {history[-1]['minutes']:.1f} minutes; the weights are those of epoch "
            f"{best['epoch']} (validation NLL {best['val_nll']:.3f} nats per frame). Exported on {cpu_name()}."
        )
    if facts.report is not None:
        lines += ["", *evaluation_lines(facts.report, facts.pieces_noun)]
    lines += [
        "",
        "## Limits",
        *limits(facts),
        "",
        "## Checksum",
        f"- `{WEIGHTS_FILE}` (float16) sha256: `{weights_sha256}`",
        "",
    ]
    return "\n".join(lines)


def limits(facts: CardFacts) -> list[str]:
    """What the model cannot do: the corpus's reach, and how its probabilities are calibrated."""
    if facts.is_bach:
        reach = [
            "- Four-part chorales only: it knows hymn-like harmony at a walking pace, not piano textures, "
            "other styles or other meters.",
            phrase_limit(facts.run_config["model"]),
        ]
    else:
        reach = [
            f"- It knows only the music of `{portable_path(facts.corpus.source)}` ({len(facts.corpus)} pieces), "
            "on a grid of "
            f"{facts.corpus.steps_per_beat} steps per beat, all parts merged onto the piano keys.",
            "- It reads at most a few bars of context well; it has no sense of phrase or form.",
        ]
    if facts.run_config["train"]["pos_weight"] != 1 and not is_nade(facts.run_config["model"]):
        reach.append(
            "- Probabilities are calibrated by shifting each logit by -ln(pos_weight); thresholds "
            "other than 0.5 change the density."
        )
    return reach


def phrase_limit(model: dict) -> str:
    """What a Bach model knows of phrases: where they end, if it reads the chorales' fermatas; else nothing."""
    if "phrase" in model.get("inputs", ()):
        return (
            "- It cadences where it is told a phrase ends (the chorales' fermatas taught it; composing places one "
            "every two bars unless asked otherwise), but it does not plan a phrase's harmony or a piece's form."
        )
    if is_nade(model):
        return (
            "- It has no sense of phrase or cadence beyond a few bars, and it cannot tell a held note "
            "from one struck again (a piano roll does not say)."
        )
    return (
        "- Its pieces hold notes longer and repeat bars more than Bach does; it has no sense of "
        "phrase or cadence beyond a few bars."
    )


def is_nade(model: dict) -> bool:
    return model.get("head") == "nade"


def head_phrase(model: dict) -> str:
    """The output head in words; folders from before the choice of head have the independent one."""
    if is_nade(model):
        return f"NADE head ({model['nade_units']} units, keys decided {model['key_order']}), trained on the exact NLL."
    return "88 independent sigmoid outputs (the specification's)."


def generation_sentence(generated: dict, pieces_noun: str) -> str:
    """How the judged pieces were made, from the settings their JSON files recorded (when they did)."""
    settings = generated.get("settings")
    count = generated["generated"]["pieces"]
    if settings is None:
        return f"Generated music ({count} pieces) against the real held-out {pieces_noun}:"
    flags = changed_flags(settings, GenerationSettings(seed=0))  # seed=0 only spares drawing one; seeds are not shown
    said_elsewhere = ("--temperature", "--scale", "--length", "--context", "--num-outputs")  # or the strategy's own
    flags = [flag for flag in flags if not flag.startswith(said_elsewhere)]
    how = f"composed with `{' '.join(flags)}`" if flags else "composed with the default settings"
    if settings.get("scale") is None:
        how += ": no key mask, so the in-key rate is the model's own"
    return (
        f"Generated music ({count} pieces of {settings['length']} steps, {how}) against the real held-out "
        f"{pieces_noun}:"
    )


def evaluation_lines(report: dict, pieces_noun: str) -> list[str]:
    baselines = report["baselines"]
    lines = [
        f"## Held-out {report['split']} {pieces_noun} ({report['pieces']} pieces, {report['frames']:,} frames, "
        f"context `{report['context']}`)",
        "",
        "| | NLL, nats per frame | frame accuracy | F1 |",
        "| --- | --- | --- | --- |",
        f"| this model | **{report['nll']:.3f}** | {report['frame_accuracy']:.3f} | {report['f1']:.3f} |",
    ]
    for name, baseline in baselines.items():
        lines.append(
            f"| baseline: {name.replace('_', ' ')} | {baseline['nll']:.3f} | "
            f"{baseline['frame_accuracy']:.3f} | {baseline['f1']:.3f} |"
        )
    generated = report.get("generated")
    if generated:
        ours, real = generated["generated"], generated["real"]
        lines += [
            "",
            generation_sentence(generated, pieces_noun),
            "",
            "| | notes per step | in key | empty steps | bars repeated | pitch-class KL from train |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for label, values in (("generated", ours), ("real", real)):
            lines.append(
                f"| {label} | {values['note_density']:.2f} | {values['in_key_rate']:.2f} | "
                f"{values['empty_step_rate']:.2f} | {values['repeated_window_rate']:.2f} | "
                f"{values['pitch_class_kl_from_train']:.3f} |"
            )
        lines += judged_lines(generated)
    return lines


def judged_lines(generated: dict) -> list[str]:
    """The card's sentences on the classifier two-sample test and on novelty, where the report has them."""
    lines = []
    if generated.get("two_sample_accuracy") is not None:
        test = generated["two_sample"]
        lines += [
            "",
            f"A classifier tells its {test['passage_bars']}-bar passages from the real ones with balanced accuracy "
            f"{test['accuracy']:.2f} (0.5: indistinguishable); the most telling feature: "
            f"{test['features'][0]['meaning']}, {test['features'][0]['generated']:g} against "
            f"{test['features'][0]['real']:g}.",
        ]
    if generated.get("novelty"):
        novelty = generated["novelty"]
        lines += [
            "",
            f"The longest passage of these pieces found in a training piece (in any transposition) is "
            f"{novelty['longest_shared_bars']:g} bars; {novelty['mean_copied_bar_share']:.0%} of their bars occur "
            f"in training pieces; {novelty['pieces_copying_4_bars_or_more']} of {len(novelty['pieces'])} pieces "
            "copy 4 bars or more.",
        ]
    return lines
