"""Output heads: what the network's features say about the 88 keys of the next step.

The network reads a piece and gives, for each step, features of shape (..., dense_units). A head
turns them into a distribution over the next step's frame (88 keys, 1.0 where a key sounds) and
answers what the rest of musiclstm asks of that distribution:
- `loss(features, frames)`: the training loss, one number;
- `frame_nll(features, frames)`: -log p(frame | past) in nats, shape (...), for scoring;
- `predicted_frames(features)`: the frame the head predicts, bool (..., 88), for frame accuracy;
- `draw(features, rules, generator)`: a frame drawn under `DrawRules`, bool (batch, 88), for composing.
Calibration lives here, nowhere else. `IndependentHead` is the specification's output layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from musiclstm.config import N_KEYS
from musiclstm.sampling import choose_notes, note_probabilities


@dataclass(frozen=True)
class DrawRules:
    """What a drawn frame must obey: temperature, which keys may sound, and how notes are chosen.

    `allowed` (batch, 88) bool is the key mask (None: every key); `forced` (batch, 88) bool holds keys
    that must sound whatever the model says. The rest are `sampling.choose_notes`'s settings.
    """

    temperature: float = 1.0
    allowed: torch.Tensor | None = None
    forced: torch.Tensor | None = None
    choose: str = "threshold"
    threshold: float = 0.5
    top_k: int = 3
    max_notes: int | None = None


class IndependentHead(nn.Linear):
    """The specification's output: a Dense layer to 88 logits, each key an independent Bernoulli.

    Training weighs a sounding note `pos_weight` times (the seed's 10 leaves the plateau of each key's
    own frequency at once; README). Weighted BCE is minimised where the predicted odds are
    `pos_weight` times the true odds, so every logit is shifted by ln(pos_weight); scoring and drawing
    shift it back and use calibrated log-odds. A subclass of nn.Linear, so its weights keep the names
    `head.weight` and `head.bias` in every model folder.
    """

    def __init__(self, in_features: int, pos_weight: float = 1.0):
        super().__init__(in_features, N_KEYS)
        self.pos_weight = pos_weight

    def calibrated_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Honest log-odds that each key sounds, (..., 88) float32: the layer's logits minus ln(pos_weight)."""
        return self(features).float() - math.log(self.pos_weight)

    def loss(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy over keys and steps, a sounding note weighted `pos_weight`, a silent one 1."""
        weight = 1 + (self.pos_weight - 1) * frames
        return F.binary_cross_entropy_with_logits(self(features).float(), frames, weight=weight)

    def frame_nll(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """-log p(frame) in nats, summed over the 88 independent keys, shape (...); computed in float64."""
        logits = self(features).double() - math.log(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits, frames.double(), reduction="none").sum(-1)

    def predicted_frames(self, features: torch.Tensor) -> torch.Tensor:
        """Every key whose calibrated probability exceeds 0.5, bool (..., 88)."""
        return self.calibrated_logits(features) > 0

    def draw(self, features: torch.Tensor, rules: DrawRules, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw one frame per row of features (batch, dense_units): bool (batch, 88)."""
        probabilities = note_probabilities(self.calibrated_logits(features), rules.temperature, rules.allowed)
        if rules.forced is not None:
            probabilities = torch.where(rules.forced, 1.0, probabilities)
        return choose_notes(
            probabilities, rules.allowed, rules.choose, rules.threshold, rules.top_k, rules.max_notes, generator
        )
