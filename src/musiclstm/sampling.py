"""Choose the notes of the next step from the model's logits: temperature, key, and how notes are picked.

Tensor in, tensor out; randomness comes only from the generator passed in. Logits have shape
(batch, 88) and are the model's calibrated log-odds, one independent Bernoulli per key.
Two of the specification's formulas are wrong and are not used here (DESIGN.md, errata 2 and 3):
- temperature divides each key's logit, p = sigmoid(logit / T); the seed's softmax over 88 keys makes
  them compete, so almost nothing passes 0.5 and the output falls to its three-note fallback;
- the key mask sets out-of-key notes to probability 0 and leaves in-key notes as they are; the seed
  renormalised the masked values to sum to 1, the same mistake.
"""

from __future__ import annotations

import torch

from musiclstm.config import CHOICES, LOWEST_PITCH, N_KEYS, MusicLSTMError, check_one_of, scale_pitch_classes


def scale_mask(key: str, scale: str) -> torch.Tensor:
    """The 88 keys that belong to a key and scale, as a bool tensor; column k is MIDI pitch 21 + k."""
    allowed = scale_pitch_classes(key, scale)
    return torch.tensor([(LOWEST_PITCH + k) % 12 in allowed for k in range(N_KEYS)])


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Scale each key's logit by 1 / temperature: below 1 sharpens its probability, above 1 flattens it."""
    if not temperature > 0:
        raise MusicLSTMError(f"temperature must be above 0, got {temperature}")
    return logits / temperature


def note_probabilities(logits: torch.Tensor, temperature: float, allowed: torch.Tensor | None) -> torch.Tensor:
    """Each key's probability after temperature, 0 for keys outside `allowed`; in-key keys keep theirs."""
    probabilities = torch.sigmoid(apply_temperature(logits, temperature))
    return probabilities if allowed is None else probabilities * allowed


def check_choice(choose: str) -> None:
    """Refuse a way of choosing notes that is not one of CHOICES."""
    check_one_of("choose", choose, CHOICES, "way to choose notes")


def choose_notes(
    probabilities: torch.Tensor,
    allowed: torch.Tensor | None,
    choose: str = "threshold",
    threshold: float = 0.5,
    top_k: int = 3,
    max_notes: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the sounding keys of one step, shape (batch, 88) bool.

    `threshold` plays every key above the threshold; `sample` draws each key from its own Bernoulli.
    A step left silent gets its `top_k` most likely allowed keys, so pieces never stall; `max_notes`
    keeps only the most likely keys of a crowded step.
    """
    check_choice(choose)
    if choose == "threshold":
        notes = probabilities > threshold
    else:
        notes = torch.rand(probabilities.shape, generator=generator, device=probabilities.device) < probabilities
    ranked = probabilities if allowed is None else probabilities.masked_fill(~allowed, -1.0)
    if top_k > 0:
        silent = ~notes.any(dim=1)
        fallback = torch.zeros_like(notes).scatter_(1, ranked.topk(top_k, dim=1).indices, True)
        if allowed is not None:
            fallback &= allowed
        notes = torch.where(silent[:, None], fallback, notes)
    if max_notes is not None:
        kept = torch.zeros_like(notes).scatter_(
            1, ranked.masked_fill(~notes, -2.0).topk(max_notes, dim=1).indices, True
        )
        notes &= kept
    return notes
