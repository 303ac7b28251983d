"""Choose the notes of the next step from the model's logits: temperature, key, and how notes are picked.

Tensor in, tensor out; randomness comes only from the generator passed in. Logits have shape
(batch, 88) and are log-odds: the independent head's calibrated ones, or each key's conditional in a
NADE head's order; both heads decide by `passing` and `obeying`.
Two of the specification's formulas are wrong and are not used here (docs, "Where the
specification is wrong", 2 and 3):
- temperature divides each key's logit, p = sigmoid(logit / T); the seed's softmax over 88 keys makes
  them compete, so almost nothing passes 0.5 and the output falls to its three-note fallback;
- the key mask sets out-of-key notes to probability 0 and leaves in-key notes as they are; the seed
  renormalised the masked values to sum to 1, the same mistake.
"""

from __future__ import annotations

import math

import torch

from musiclstm.config import CHOICES, KEY_PITCH_CLASSES, check_one_of, scale_pitch_classes
from musiclstm.music.voices import parallels_between


def scale_mask(key: str, scale: str) -> torch.Tensor:
    """The 88 keys that belong to a key and scale, as a bool tensor; column k is MIDI pitch 21 + k."""
    allowed = scale_pitch_classes(key, scale)
    return torch.tensor([pitch_class in allowed for pitch_class in KEY_PITCH_CLASSES])


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Scale each key's logit by 1 / temperature: below 1 sharpens its probability, above 1 flattens it.

    The temperature is checked where it is set (GenerationSettings): above 0 and finite.
    """
    return logits / temperature


def note_probabilities(logits: torch.Tensor, temperature: float, allowed: torch.Tensor | None) -> torch.Tensor:
    """Each key's probability after temperature, 0 for keys outside `allowed`; in-key keys keep theirs."""
    probabilities = torch.sigmoid(apply_temperature(logits, temperature))
    return probabilities if allowed is None else probabilities * allowed


def check_choice(choose: str) -> None:
    """Refuse a way of choosing notes that is not one of CHOICES."""
    check_one_of("choose", choose, CHOICES, "way to choose notes")


def uniform_draws(shape: tuple[int, ...], choose: str, generator: torch.Generator | None, device=None):
    """One uniform number per key for `sample`, drawn up front from `generator`; None for `threshold`."""
    check_choice(choose)
    return torch.rand(shape, generator=generator, device=device) if choose == "sample" else None


def passing(logits: torch.Tensor, threshold: float, uniform: torch.Tensor | None) -> torch.Tensor:
    """The keys the choice rule plays, from log-odds after temperature, bool of the logits' shape.

    With `uniform` numbers (`sample`) a key plays where its number falls below its probability; without
    (`threshold`) where its probability exceeds `threshold`, compared as log-odds so that no probability
    is rounded to the threshold.
    """
    if uniform is not None:
        return uniform < torch.sigmoid(logits)
    return logits > math.log(threshold / (1 - threshold))


def obeying(
    notes: torch.Tensor,
    allowed: torch.Tensor | None,
    forced: torch.Tensor | None,
    n_sounding: torch.Tensor | None = None,
    max_notes: int | None = None,
) -> torch.Tensor:
    """`notes` (batch, keys) with keys outside `allowed` off, nothing more in a row already sounding
    `max_notes` keys (`n_sounding`, (batch,)), and `forced` keys on whatever else holds."""
    if allowed is not None:
        notes = notes & allowed
    if max_notes is not None and n_sounding is not None:
        notes = notes & (n_sounding < max_notes)[:, None]
    return notes if forced is None else notes | forced


def choose_notes(
    logits: torch.Tensor,
    allowed: torch.Tensor | None,
    choose: str = "threshold",
    threshold: float = 0.5,
    top_k: int = 3,
    max_notes: int | None = None,
    generator: torch.Generator | None = None,
    forced: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pick the sounding keys of one step of independent keys from their log-odds after temperature, (batch, 88) bool.

    `threshold` plays every key above the threshold; `sample` draws each key from its own Bernoulli;
    keys outside `allowed` stay off and `forced` keys sound. A step left silent, or sounding only its forced
    keys (a melody being harmonized), gets its `top_k` most likely allowed keys (forced ones first), so
    pieces never stall and a melody is never left alone; `max_notes` keeps only the most likely keys of a
    crowded step, a forced key counting as certain.
    """
    uniform = uniform_draws(logits.shape, choose, generator, logits.device)
    notes = obeying(passing(logits, threshold, uniform), allowed, forced)
    probabilities = note_probabilities(logits, 1.0, allowed)
    if forced is not None:
        probabilities = torch.where(forced, 1.0, probabilities)
    ranked = probabilities if allowed is None else probabilities.masked_fill(~allowed, -1.0)
    if top_k > 0:
        silent = ~(notes if forced is None else notes & ~forced).any(dim=1)  # a harmony's melody alone is silence
        fallback = torch.zeros_like(notes).scatter_(1, ranked.topk(top_k, dim=1).indices, True)
        if allowed is not None:
            fallback &= allowed
        notes = torch.where(silent[:, None], fallback if forced is None else fallback | forced, notes)
    if max_notes is not None:
        kept = torch.zeros_like(notes).scatter_(
            1, ranked.masked_fill(~notes, -2.0).topk(max_notes, dim=1).indices, True
        )
        notes &= kept
    return notes


def tempered_choice(log_weights: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One index per row of `log_weights` (rows, candidates), drawn with probability proportional to exp(weight)."""
    return torch.multinomial(torch.softmax(log_weights.double(), dim=1), 1, generator=generator).squeeze(1)


def without_parallels(log_weights: torch.Tensor, candidates: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """`log_weights` (batch, count) of candidate steps (batch, count, 88) after the steps `previous` (batch, 88),
    with -inf for each candidate that moves two of four voices in parallel fifths or octaves
    (`voices.parallels_between`), in every row where some candidate does not."""
    batch, count = log_weights.shape
    before = previous.repeat_interleave(count, dim=0).cpu().numpy()
    after = candidates.reshape(batch * count, -1).cpu().numpy()
    crossing = torch.from_numpy(parallels_between(before, after) > 0).view(batch, count)
    return log_weights.masked_fill(crossing & (~crossing).any(dim=1, keepdim=True), -math.inf)


VOICE_PENALTY = 1.0  # log-weight a candidate step loses per key it sounds more or fewer than its piece's voices


def with_voices(log_weights: torch.Tensor, candidates: torch.Tensor, voices: torch.Tensor) -> torch.Tensor:
    """`log_weights` (batch, count) of candidate steps (batch, count, 88), each lowered by VOICE_PENALTY per key it
    sounds more or fewer than its row's `voices` (batch,); a row whose voices are 0 is left alone."""
    distance = (candidates.sum(dim=-1) - voices[:, None]).abs()
    return log_weights - VOICE_PENALTY * distance * (voices[:, None] > 0)
