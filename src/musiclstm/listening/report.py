"""Report a listening test: what raters thought of generated and real music, with its uncertainty.

Per source (generated, real) and per question (the specification's three, and their average per
answer): the mean rating, a 95% bootstrap interval resampling raters and clips both (each rater and
each clip is a random draw from many; resampling answers alone would claim far too much), and the
counts. The specification's target (generated music rated above 3.5 of 5) is passed when the whole
interval lies above it, failed when it lies below, undecided when it straddles it, and not judged
with fewer than MIN_RATERS raters (the specification asks for 5 or more). The "real or computer?"
guesses give an accuracy and a two-sided binomial test against chance (50%); answers of one rater are
treated as independent, as in the literature's discrimination tests. Also: every answer as CSV, and
a plot of the rating distributions side by side. A ratings store the report cannot trust (an answer to
a clip the answer key does not know, a table gone, an unreadable file) is a `MusicLSTMError` naming the
file, never a partial report. Nothing here imports torch.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from musiclstm.files import check_output_file, pyplot, write_atomically, write_bytes_atomically, write_json_atomically
from musiclstm.listening.ratings import QUESTIONS, RATING_RANGE, Answer, DamagedStoreError
from musiclstm.listening.study import SOURCES, Study, as_study, read_answer_key

TARGET = 3.5  # the specification: "target > 3.5/5 average"
MIN_RATERS = 5  # the specification: "ask 5+ listeners"
CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000
AVERAGE = "average"  # the mean of an answer's three ratings


def bootstrap_interval(
    values: np.ndarray, raters: np.ndarray, clips: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0
) -> tuple[float, float]:
    """The 95% percentile interval of the mean rating, resampling raters and clips with replacement.

    `values[i]` is the rating rater `raters[i]` gave clip `clips[i]` (rater and clip as 0-based codes).
    Each bootstrap sample draws raters and clips, then weighs each rating by how often its rater and
    its clip were drawn; a sample in which no drawn rater rated a drawn clip is left out.
    """
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    n_raters, n_clips = int(raters.max()) + 1, int(clips.max()) + 1
    rater_draws = rng.multinomial(n_raters, np.full(n_raters, 1 / n_raters), size=samples)  # (samples, raters)
    clip_draws = rng.multinomial(n_clips, np.full(n_clips, 1 / n_clips), size=samples)
    weights = rater_draws[:, raters] * clip_draws[:, clips]  # (samples, ratings)
    total = weights.sum(axis=1)
    means = (weights @ values)[total > 0] / total[total > 0]
    tail = (1 - CONFIDENCE) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def binomial_p_value(successes: int, trials: int) -> float:
    """The two-sided p-value of `successes` in `trials` under chance (probability 1/2)."""
    from scipy.stats import binomtest

    return float(binomtest(successes, trials, 0.5).pvalue)


def verdict(interval: tuple[float, float], n_raters: int) -> str:
    """The specification's target: 'passed', 'failed', 'undecided' (the interval straddles 3.5) or 'too few raters'."""
    if n_raters < MIN_RATERS:
        return "too few raters"
    low, high = interval
    return "passed" if low > TARGET else "failed" if high <= TARGET else "undecided"


def summarise(answers: list[Answer], question: str) -> dict:
    """Mean, interval and counts of one question's ratings (or their AVERAGE) over some answers."""
    if not answers:
        return {"mean": None, "interval": None, "raters": 0, "clips": 0, "ratings": 0}
    values = np.array(
        [sum(a.ratings.values()) / len(QUESTIONS) if question == AVERAGE else a.ratings[question] for a in answers]
    )
    rater_codes = np.unique([a.rater_id for a in answers], return_inverse=True)[1]
    clip_codes = np.unique([a.clip_id for a in answers], return_inverse=True)[1]
    return {
        "mean": float(values.mean()),
        "interval": list(bootstrap_interval(values, rater_codes, clip_codes)),
        "raters": int(rater_codes.max()) + 1,
        "clips": int(clip_codes.max()) + 1,
        "ratings": len(values),
    }


def is_right(guess: str, source: str) -> bool:
    """Whether a guess ("real" or "computer") names a clip's source ("real" or "generated")."""
    return (guess == "real") == (source == "real")


def guess_report(answers: list[Answer], sources: dict[str, str]) -> dict:
    """How well raters told real from generated: accuracy, binomial p-value, and how often each was taken for real."""
    correct = sum(is_right(answer.guess, sources[answer.clip_id]) for answer in answers)
    report = {"answers": len(answers), "correct": correct, "accuracy": None, "p_value": None}
    if answers:
        report.update(accuracy=correct / len(answers), p_value=binomial_p_value(correct, len(answers)))
    for source in SOURCES:
        guesses = [answer.guess for answer in answers if sources[answer.clip_id] == source]
        report[f"{source}_taken_for_real"] = guesses.count("real") / len(guesses) if guesses else None
    return report


def keyed_answers(study: Study) -> tuple[list[Answer], dict[str, dict]]:
    """The study's answers and its answer key, every answer's clip in the key.

    Raises:
        MusicLSTMError: the ratings store cannot be read, or holds an answer to a clip the key does not know.
    """
    key = read_answer_key(study)
    answers = study.ratings.answers()
    unknown = sorted({answer.clip_id for answer in answers} - set(key))
    if unknown:
        raise DamagedStoreError(
            f"{study.ratings.path}: damaged ratings store (answers to {len(unknown)} clip(s) the study does not "
            f"have: {', '.join(map(repr, unknown[:3]))})"
        )
    return answers, key


def study_report(study: Study | str | Path) -> dict:
    """The whole report of a study's answers so far (from one rater up); `study` a Study or its folder.

    Raises:
        MusicLSTMError: not a study, or a damaged ratings store or answer key, each named.
    """
    study = as_study(study)
    answers, key = keyed_answers(study)
    sources = {clip: entry["source"] for clip, entry in key.items()}
    raters = len({answer.rater_id for answer in answers})
    ratings = {
        source: {
            question: summarise([a for a in answers if sources[a.clip_id] == source], question)
            for question in (*QUESTIONS, AVERAGE)
        }
        for source in SOURCES
    }
    generated = ratings["generated"]
    return {
        "study": str(study.folder),
        "real_name": study.real_name,
        "raters": raters,
        "answers": len(answers),
        "clips": len(study.clip_ids),
        "enough_raters": raters >= MIN_RATERS,
        "ratings": ratings,
        "target": {
            "above": TARGET,
            "verdicts": {
                question: verdict(generated[question]["interval"], raters) if generated[question]["ratings"] else None
                for question in (*QUESTIONS, AVERAGE)
            },
        },
        "guesses": guess_report(answers, sources),
    }


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_interval(row: dict) -> str:
    if not row["ratings"]:
        return "no ratings"
    low, high = row["interval"]
    return f"{row['mean']:.2f} [{low:.2f}, {high:.2f}] n={row['ratings']}"


def format_study_report(report: dict) -> str:
    """The report as text for the terminal."""
    real, guesses = report["real_name"], report["guesses"]
    lines = [
        f"{plural(report['answers'], 'answer')} by {plural(report['raters'], 'rater')} "
        f"on {report['clips']} clips in {report['study']}; mean rating [95% interval] and count:",
        f"{'':<12} {'generated':>28} {f'real ({real})':>28}",
    ]
    for question in (*QUESTIONS, AVERAGE):
        cells = [format_interval(report["ratings"][source][question]) for source in SOURCES]
        lines.append(f"{question:<12} {cells[0]:>28} {cells[1]:>28}")
    if report["enough_raters"]:
        verdicts = ", ".join(f"{question} {outcome}" for question, outcome in report["target"]["verdicts"].items())
        lines.append(f"Target, generated music rated above {TARGET}: {verdicts}")
    else:
        lines.append(
            f"Target, generated music rated above {TARGET}: too few raters to conclude "
            f"({report['raters']} of the {MIN_RATERS} or more the specification asks for)"
        )
    if guesses["answers"]:
        taken = [
            f"{source} {guesses[f'{source}_taken_for_real']:.0%}"
            for source in SOURCES
            if guesses[f"{source}_taken_for_real"] is not None
        ]
        lines.append(
            f"'{real} or computer?': {guesses['correct']} of {guesses['answers']} right ({guesses['accuracy']:.0%}), "
            f"binomial p = {guesses['p_value']:.3g} against chance (50%); taken for {real}: {', '.join(taken)}"
        )
    return "\n".join(lines)


def write_ratings_csv(study: Study | str | Path, path: str | Path) -> Path:
    """Write every answer as a CSV row: rater, clip, source, origin, the three ratings, guess, right or not, time."""
    answers, key = keyed_answers(as_study(study))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rater", "clip", "source", "origin", *QUESTIONS, "guess", "correct", "submitted_at"])
    for answer in answers:
        source = key[answer.clip_id]["source"]
        correct = is_right(answer.guess, source)
        row = [answer.rater_id, answer.clip_id, source, key[answer.clip_id]["origin"]]
        row += [*(answer.ratings[question] for question in QUESTIONS), answer.guess, int(correct), answer.submitted_at]
        writer.writerow(row)
    write_bytes_atomically(Path(path), out.getvalue().encode("utf-8"))
    return Path(path)


def plot_ratings(study: Study | str | Path, path: str | Path) -> Path:
    """Draw, per question, the share of each rating 1-5 for generated beside real music, as a PNG."""
    plt = pyplot()

    study = as_study(study)
    answers, key = keyed_answers(study)
    levels = np.arange(RATING_RANGE[0], RATING_RANGE[1] + 1)
    figure, axes = plt.subplots(1, len(QUESTIONS), figsize=(12, 3.6), sharey=True)
    for axis, question in zip(axes, QUESTIONS, strict=True):
        for offset, source in ((-0.2, "generated"), (0.2, "real")):
            given = [a.ratings[question] for a in answers if key[a.clip_id]["source"] == source]
            shares = np.array([given.count(level) for level in levels]) / max(len(given), 1)
            label = f"{source if source == 'generated' else study.real_name} (n={len(given)})"
            axis.bar(levels + offset, shares, 0.4, label=label)
        axis.set(title=question, xlabel="rating", xticks=levels)
    axes[0].set_ylabel("share of ratings")
    axes[-1].legend()
    figure.tight_layout()
    write_atomically(Path(path), lambda file: figure.savefig(file, format="png", dpi=100))
    plt.close(figure)
    return Path(path)


def save_study_report(
    study: Study | str | Path,
    json: str | Path | None = None,
    csv: str | Path | None = None,
    plot: str | Path | None = None,
) -> dict:
    """A study's report, written where asked as JSON, every answer as CSV and the rating distributions as PNG.

    Every path is checked before the store is read, so a bad one costs nothing.
    """
    for path in (json, csv, plot):
        if path:
            check_output_file(path)
    study = as_study(study)
    report = study_report(study)
    if json:
        write_json_atomically(Path(json), report)
    if csv:
        write_ratings_csv(study, csv)
    if plot:
        plot_ratings(study, plot)
    return report
