"""Output heads: what the network's features say about the 88 keys of the next step.

The network reads a piece and gives, for each step, features of shape (..., dense_units). A head
turns them into a distribution over the next step's frame (88 keys, 1.0 where a key sounds) and
answers what the rest of musiclstm asks of that distribution:
- `loss(features, frames)`: the training loss, one number;
- `frame_nll(features, frames)`: -log p(frame | past) in nats, shape (...), for scoring;
- `predicted_frames(features)`: the frame the head predicts, bool (..., 88), for frame accuracy;
- `decisions(features, frames)`: each key's likelier value given the true keys before it, for the
  share of right key decisions that training logs (the predicted frame, for independent keys);
- `draw(features, rules, generator)`: a frame drawn under `DrawRules`, bool (batch, 88), for composing.
Calibration lives here, nowhere else. `IndependentHead` is the specification's output layer;
`NadeHead` decides the keys of a step one after another, each seeing the ones already decided.
`make_head` builds the one a ModelConfig names.

`StrikeHead` predicts the rest of a step given its sounding keys: which of the keys that sounded the
step before and sound again are struck again (a new note) rather than held. A key that starts to
sound is struck, a silent one is not, so p(sounding, struck) = p(sounding) x p(struck | sounding)
exactly, and the sounding keys' likelihood is the sound head's, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from musiclstm.config import N_KEYS, ModelConfig
from musiclstm.network.sampling import (
    apply_temperature,
    choose_notes,
    obeying,
    passing,
    tempered_choice,
    uniform_draws,
    with_voices,
    without_parallels,
)

NADE_ROWS = 1024  # frames a NADE head scores at once: 1024 x 88 x 150 float32 hidden values are 54 MB


@dataclass(frozen=True)
class DrawRules:
    """What a drawn frame must obey: temperature, which keys may sound, and how notes are chosen.

    `allowed` (batch, 88) bool is the key mask (None: every key); `forced` (batch, 88) bool holds keys
    that must sound whatever the model says. The rest are `sampling.choose_notes`'s settings; both heads
    decide by `sampling`'s rules (`passing`, `obeying`).
    """

    temperature: float = 1.0
    allowed: torch.Tensor | None = None
    forced: torch.Tensor | None = None
    choose: str = "threshold"
    threshold: float = 0.5
    top_k: int = 3
    max_notes: int | None = None
    candidates: int = 1  # NADE, `sample`: whole steps drawn per step, one kept by p^(1/T) (1: each key's logit / T)
    avoid_parallels: bool = False  # of the candidates, none with parallel fifths or octaves where one has none
    voices: torch.Tensor | None = None  # (batch,) int: of the candidates, those sounding this many keys preferred


class IndependentHead(nn.Linear):
    """The specification's output: a Dense layer to 88 logits, each key an independent Bernoulli.

    Training weighs a sounding note `pos_weight` times (the seed's 10 leaves the plateau of each key's
    own frequency at once; docs: benchmarks). Weighted BCE is minimised where the predicted odds are
    `pos_weight` times the true odds, so every logit is shifted by ln(pos_weight); scoring and drawing
    shift it back and use calibrated log-odds. A subclass of nn.Linear, so its weights keep the names
    `head.weight` and `head.bias` in every model folder.
    """

    def __init__(self, in_features: int, pos_weight: float = 1.0):
        super().__init__(in_features, N_KEYS)
        self.pos_weight = pos_weight

    def start_from(self, key_frequencies: torch.Tensor) -> None:
        """Start each key's bias at its log-odds in the training data (shifted by ln(pos_weight), as trained)."""
        with torch.no_grad():
            self.bias.copy_(torch.logit(key_frequencies) + math.log(self.pos_weight))

    def layer_rows(self) -> list[tuple[str, str, int]]:
        """The head's lines of the layer table: (layer, output shape, parameters)."""
        return [("head (Linear, logits)", f"(batch, {self.out_features})", self.weight.numel() + self.bias.numel())]

    def calibrated_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Honest log-odds that each key sounds, (..., 88) float32: the layer's logits minus ln(pos_weight)."""
        return self(features).float() - math.log(self.pos_weight)

    def loss(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy over keys and steps, a sounding note weighted `pos_weight`, a silent one 1."""
        weight = 1 + (self.pos_weight - 1) * frames
        return F.binary_cross_entropy_with_logits(self(features).float(), frames, weight=weight)

    def key_nll(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """-log p(each key as `frames` has it) in nats, (..., 88) by key index, float64; keys are independent."""
        logits = self(features).double() - math.log(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits, frames.double(), reduction="none")

    def frame_nll(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """-log p(frame) in nats, summed over the 88 independent keys, shape (...); computed in float64."""
        return self.key_nll(features, frames).sum(-1)

    def predicted_frames(self, features: torch.Tensor) -> torch.Tensor:
        """Every key whose calibrated probability exceeds 0.5, bool (..., 88)."""
        return self.calibrated_logits(features) > 0

    def decisions(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Each key's likelier value given what came before it, bool (..., 88): here, the predicted frame."""
        return self.predicted_frames(features)

    def draw(
        self,
        features: torch.Tensor,
        rules: DrawRules,
        generator: torch.Generator | None = None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw one frame per row of features (batch, dense_units): bool (batch, 88). Its keys are independent,
        so each key's temperature tempers the whole step; `previous` is not read (no candidates to choose among)."""
        logits = apply_temperature(self.calibrated_logits(features), rules.temperature)
        return choose_notes(
            logits, rules.allowed, rules.choose, rules.threshold, rules.top_k, rules.max_notes, generator, rules.forced
        )


class NadeHead(nn.Module):
    """RNN-NADE's output (Boulanger-Lewandowski et al. 2012): p(frame) as a product of 88 conditionals.

    The keys are decided one at a time in `order` (key indices, first decided first); each key's
    probability depends on the network's features and on the keys already decided in the same frame,
    through one hidden layer shared by all 88 conditionals (NADE, Larochelle & Murray 2011):

        hidden_i = sigmoid(b_h + W[:, order[:i]] @ keys[order[:i]])
        p(key order[i] sounds) = sigmoid(b_v[i] + V[i] @ hidden_i)

    with the biases b_h (units) and b_v (88, in key order) computed from the features each step.
    Teacher-forced, all 88 hidden layers come from one cumulative sum, O(88 x units) per frame. The
    loss is the exact NLL per key decision: nothing is weighted, so nothing needs calibrating.
    """

    pos_weight = 1.0  # the loss weight a sounding note had in training: none

    def __init__(self, in_features: int, units: int, order: str = "high-to-low", keys: int = N_KEYS):
        super().__init__()
        self.order_name = order
        self.hidden_bias = nn.Linear(in_features, units)
        self.key_bias = nn.Linear(in_features, keys)
        self.key_to_hidden = nn.Parameter(torch.empty(keys, units))  # row i: W[:, order[i]]
        self.hidden_to_key = nn.Parameter(torch.empty(keys, units))  # row i: V[i]
        self.register_buffer("order", key_order(order, keys), persistent=False)  # keys < 88 only in tests
        nn.init.xavier_uniform_(self.key_to_hidden)
        nn.init.xavier_uniform_(self.hidden_to_key)

    def layer_rows(self) -> list[tuple[str, str, int]]:
        """The head's lines of the layer table: (layer, output shape, parameters)."""
        keys, units = self.key_to_hidden.shape
        return [
            ("head: hidden bias (Linear)", f"(batch, {units})", units * (self.hidden_bias.in_features + 1)),
            ("head: key bias (Linear)", f"(batch, {keys})", keys * (self.key_bias.in_features + 1)),
            (f"head: NADE, {self.order_name}", f"(batch, {keys}) logits", 2 * keys * units),
        ]

    def start_from(self, key_frequencies: torch.Tensor) -> None:
        """Start each key's bias at its log-odds in the training data, so training begins at each key's
        frequency instead of spending its first minutes learning it."""
        with torch.no_grad():
            self.key_bias.bias.copy_(torch.logit(key_frequencies[self.order]))

    def ordered_logits(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Teacher-forced log-odds of each key given the keys before it in `frames`, (..., 88) in key order."""
        keys = frames[..., self.order].to(self.key_to_hidden.dtype)
        inputs = keys[..., :, None] * self.key_to_hidden  # (..., 88, units): what each decided key adds
        before = inputs.cumsum(-2) - inputs  # the keys strictly before each one
        hidden = torch.sigmoid(self.hidden_bias(features)[..., None, :] + before)
        return self.key_bias(features) + (hidden * self.hidden_to_key).sum(-1)

    def loss(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The NLL per key decision, averaged over keys and steps (the frame NLL / 88)."""
        logits = self.ordered_logits(features, frames).float()
        return F.binary_cross_entropy_with_logits(logits, frames[..., self.order].float())

    def key_nll(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """-log p(each key as `frames` has it | the keys before it in order), (..., 88) by key index, float64.

        Summed over the keys that come first in the order, it is exactly -log p(those keys): with
        `high-to-low`, the NLL of a melody's top note and the silence above it, and what remains is the
        NLL of the voices below given the melody. Scored NADE_ROWS frames at a time: each frame holds
        88 x units hidden values for a moment.
        """
        feature_blocks = features.reshape(-1, features.shape[-1]).split(NADE_ROWS)
        frame_blocks = frames.reshape(-1, frames.shape[-1]).split(NADE_ROWS)
        nll = []
        for some_features, some_frames in zip(feature_blocks, frame_blocks, strict=True):
            logits = self.ordered_logits(some_features, some_frames).double()
            in_order = F.binary_cross_entropy_with_logits(logits, some_frames[:, self.order].double(), reduction="none")
            nll.append(torch.empty_like(in_order).index_copy_(1, self.order, in_order))
        return torch.cat(nll).reshape(frames.shape)

    def frame_nll(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """-log p(frame) in nats, the sum of the 88 conditionals' NLL, shape (...); summed in float64."""
        return self.key_nll(features, frames).sum(-1)

    def decisions(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Each key's likelier value given the true keys decided before it, bool (..., 88): teacher-forced,
        one pass, so training can count right decisions without drawing a greedy frame at every step."""
        decided = self.ordered_logits(features, frames) > 0
        keys = torch.empty_like(decided)
        keys[..., self.order] = decided
        return keys

    def predicted_frames(self, features: torch.Tensor) -> torch.Tensor:
        """The greedy frame: each key in order sounds if its conditional exceeds 0.5, bool (..., 88)."""
        flat = features.reshape(-1, features.shape[-1])
        return self.draw(flat, DrawRules()).reshape(*features.shape[:-1], len(self.order))

    def draw(
        self,
        features: torch.Tensor,
        rules: DrawRules,
        generator: torch.Generator | None = None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw one frame per row of features (batch, in_features): bool (batch, 88), after the keys sounding
        the step before, `previous` (batch, 88; None: unknown).

        With `rules.candidates` above 1, a `sample` draw away from temperature 1, or one that avoids parallels,
        draws whole steps (`draw_whole_steps`); otherwise the keys are drawn one by one, each conditional
        tempered (`draw_keys`).
        """
        rule_to_keep = rules.voices is not None or (rules.avoid_parallels and previous is not None)
        whole = rules.temperature != 1.0 or rule_to_keep
        if rules.candidates > 1 and rules.choose == "sample" and whole:
            return self.draw_whole_steps(features, rules, generator, previous)
        return self.draw_keys(features, rules, generator)

    def draw_whole_steps(
        self,
        features: torch.Tensor,
        rules: DrawRules,
        generator: torch.Generator | None = None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw frames from p(frame)^(1/T) under the rules, by importance resampling: bool (batch, 88).

        Each row draws `rules.candidates` whole frames from the model at temperature 1 (the key mask and
        forced keys obeyed, so the proposal r gives each frame the product of its chosen keys'
        conditionals), and keeps one with probability proportional to p(frame)^(1/T) / r(frame). A chord
        is tempered as one choice: where a voice's note is uncertain between neighbours, T below 1
        prefers the likelier whole chord instead of making each neighbour less likely on its own, which
        drops the voice. The `max_notes` cap cuts candidates, not weighed by it. With `rules.avoid_parallels`
        and the step before known, a candidate that moves two of four voices in parallel fifths or octaves
        after it (`voices.parallels_between`) is kept only where every candidate of its row does.
        """
        batch, count = len(features), rules.candidates
        every = features.repeat_interleave(count, dim=0)
        allowed, forced = (repeated(mask, count) for mask in (rules.allowed, rules.forced))
        proposal = replace(rules, temperature=1.0, allowed=allowed, forced=forced)
        frames, log_p, log_proposal = self.draw_scored(every, proposal, generator)  # (batch x count, ...)
        log_weights = (log_p / rules.temperature - log_proposal).view(batch, count)
        if rules.avoid_parallels and previous is not None:
            log_weights = without_parallels(log_weights, frames.view(batch, count, -1), previous)
        if rules.voices is not None:
            log_weights = with_voices(log_weights, frames.view(batch, count, -1), rules.voices)
        picked = tempered_choice(log_weights, generator)
        return frames.view(batch, count, -1)[torch.arange(batch), picked]

    def draw_keys(
        self, features: torch.Tensor, rules: DrawRules, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw one frame per row of features (batch, in_features), key by key in order: bool (batch, 88).

        Temperature divides each conditional's logit; keys outside `rules.allowed` stay off and keys in
        `rules.forced` sound, and the keys after them see them so; once `max_notes` keys sound the rest
        stay off. `threshold` keeps a key whose conditional exceeds the threshold (0.5: the greedy frame),
        `sample` draws it against one uniform number per key. A silent frame is the model's own choice
        here: `top_k` adds no notes.
        """
        return self.draw_scored(features, rules, generator)[0]

    def draw_scored(
        self, features: torch.Tensor, rules: DrawRules, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`draw_keys`'s frames (batch, 88) with the log-probability of each under the rules' tempered
        conditionals, float32 (batch,): of all 88 keys' values (log p), and of the values chance chose alone,
        the keys neither masked nor forced (log r, the probability of drawing that frame this way).

        The hidden layer changes only when a key sounds, so the conditionals of all the keys up to the
        next sounding one come from one matrix product: a step costs one pass per sounding key (about
        5 in a chorale), not 88 passes of one key each, and draws exactly what deciding key by key draws.
        """
        batch, keys = len(features), len(self.order)
        hidden_in = self.hidden_bias(features).float()
        key_logits = apply_temperature(self.key_bias(features).float(), rules.temperature)
        hidden_to_key = apply_temperature(self.hidden_to_key.float().T, rules.temperature)  # (units, keys)
        key_to_hidden = self.key_to_hidden.float()
        uniform = uniform_draws((batch, keys), rules.choose, generator, features.device)
        allowed = None if rules.allowed is None else rules.allowed[:, self.order]
        forced = None if rules.forced is None else rules.forced[:, self.order]
        device = features.device
        by_chance = torch.ones(batch, keys, dtype=torch.bool, device=device) if allowed is None else allowed.clone()
        if forced is not None:
            by_chance &= ~forced
        sounding = torch.zeros(batch, keys, dtype=torch.bool, device=features.device)
        count = torch.zeros(batch, dtype=torch.long, device=features.device)
        undecided = torch.zeros(batch, dtype=torch.long, device=features.device)  # each row's next key to decide
        positions, every_row = torch.arange(keys, device=features.device), torch.arange(batch, device=features.device)
        log_p, log_proposal = torch.zeros(batch, device=device), torch.zeros(batch, device=device)
        while True:
            logits = torch.addmm(key_logits, torch.sigmoid(hidden_in), hidden_to_key)  # given the keys so far
            on = obeying(passing(logits, rules.threshold, uniform), allowed, forced, count, rules.max_notes)
            on &= positions >= undecided[:, None]
            first = on.byte().argmax(dim=1)  # each row's first key to sound from its undecided ones
            sounds = on[every_row, first]  # False for a row with nothing more to sound: it is done
            decided = torch.where(sounds, first + 1, keys)
            silent = (positions >= undecided[:, None]) & (positions < decided[:, None])
            silent[every_row, first] &= ~sounds
            chances = torch.where(silent, F.logsigmoid(-logits), 0.0)
            chances[every_row, first] += torch.where(sounds, F.logsigmoid(logits[every_row, first]), 0.0)
            log_p += chances.sum(1)
            log_proposal += (chances * by_chance).sum(1)
            if not sounds.any():
                break
            sounding[every_row, first] |= sounds
            count += sounds
            hidden_in += sounds[:, None] * key_to_hidden[first]
            undecided = decided
        frame = torch.empty_like(sounding)
        frame[:, self.order] = sounding
        return frame, log_p, log_proposal


class StrikeHead(nn.Module):
    """p(each key struck again | the features, the keys sounding now), for keys sounding now and the step before.

    Each such key is an independent Bernoulli given the features and the step's sounding keys (a
    chord struck again is struck together); every other key's strike is decided by the sounding
    keys. Its loss is the exact NLL of those decisions, summed over them and divided by 88 like the
    sound head's per-key mean, so the two add into the NLL of the whole step / 88.
    """

    def __init__(self, in_features: int, keys: int = N_KEYS):
        super().__init__()
        self.from_features = nn.Linear(in_features, keys)
        self.from_keys = nn.Linear(keys, keys, bias=False)  # the keys sounding in the same step
        nn.init.zeros_(self.from_keys.weight)
        with torch.no_grad():
            self.from_features.bias.fill_(-2.0)  # about 1 in 8 held-over keys struck again, as in the chorales

    def layer_rows(self) -> list[tuple[str, str, int]]:
        """The head's lines of the layer table: (layer, output shape, parameters)."""
        keys = self.from_keys.in_features
        count = sum(parameter.numel() for parameter in self.parameters())
        return [("strikes (Linear, features + keys)", f"(batch, {keys}) logits", count)]

    def logits(self, features: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Log-odds that each key is struck again, (..., 88) float32, given the step's sounding keys (..., 88)."""
        return (self.from_features(features) + self.from_keys(keys.to(self.from_keys.weight.dtype))).float()

    def strike_nll(
        self, features: torch.Tensor, keys: torch.Tensor, struck: torch.Tensor, previous: torch.Tensor
    ) -> torch.Tensor:
        """-log p(struck | keys, past) in nats, shape (...), float64: the held-over keys' decisions summed."""
        held_over = (keys > 0.5) & (previous > 0.5)
        nll = F.binary_cross_entropy_with_logits(
            self.logits(features, keys).double(), struck.double(), reduction="none"
        )
        return (nll * held_over).sum(-1)

    def loss(self, features: torch.Tensor, keys: torch.Tensor, struck: torch.Tensor, previous: torch.Tensor):
        """The strike NLL per step / 88, averaged over steps: added to the sound head's per-key loss."""
        held_over = (keys > 0.5) & (previous > 0.5)
        nll = F.binary_cross_entropy_with_logits(self.logits(features, keys), struck.float(), reduction="none")
        return (nll * held_over).sum(-1).mean() / keys.shape[-1]

    def draw(
        self,
        features: torch.Tensor,
        keys: torch.Tensor,
        previous: torch.Tensor,
        rules: DrawRules,
        generator: torch.Generator | None = None,
        struck: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The keys struck in a step whose sounding keys are drawn, bool (batch, 88): every key that starts
        to sound, and the held-over keys struck again by the rules' temperature and choice. `struck`
        (batch, 88) decides the held-over keys it covers (a melody's own notes) where it is given,
        together with `rules.forced`: forced keys are struck exactly where `struck` says."""
        held_over = keys & previous
        logits = apply_temperature(self.logits(features, keys.float()), rules.temperature)
        again = passing(logits, rules.threshold, uniform_draws(tuple(keys.shape), rules.choose, generator))
        if struck is not None and rules.forced is not None:
            again = torch.where(rules.forced, struck, again)
        return (keys & ~previous) | (held_over & again)


def repeated(mask: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """Each row of a (batch, 88) mask `count` times over, row after row; None stays None."""
    return None if mask is None else mask.repeat_interleave(count, dim=0)


def key_order(name: str, keys: int = N_KEYS) -> torch.Tensor:
    """The keys in the order a NADE head decides them: `high-to-low` starts at the top key (C8)."""
    order = torch.arange(keys, device="cpu")  # made on the CPU even where a model is sized on the meta device,
    return order.flip(0) if name == "high-to-low" else order  # whose first arange costs half a second


def make_head(config: ModelConfig, pos_weight: float = 1.0) -> nn.Module:
    """The output head a ModelConfig names; `pos_weight` is the independent head's training weight. It reads the
    dense layer's features, and the keys sounding the step before after them where `head_reads_previous`."""
    in_features = config.dense_units + (N_KEYS if config.head_reads_previous else 0)
    if config.head == "nade":
        return NadeHead(in_features, config.nade_units, config.key_order)
    return IndependentHead(in_features, pos_weight)
