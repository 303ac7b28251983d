"""The model as a partner who plays along: the player's keys in, the model's notes out, one step at a time.

A `Partner` knows nothing of ports or clocks: it is told when the player presses and releases a key
(`press`, `release`, MIDI pitches) and when a step of the clock ends (`tick`), and answers each with
the model's note changes, `(pitch, is_on)` in the order to send them. The model reads the music as it
goes (its state carried), so it hears the whole performance: in harmonize, the steps where the player
sounds a key; in answer, every step, the player's and its own.

- `harmonize`: the player's highest key is the top voice. With `delay` 0 the model draws the step's
  voices under it at once, on the press itself, and draws them again at every step while a key is
  held: the voices sound while the player holds a key, and stop when the last key is let go. Of a
  NADE head's whole steps, those sounding four keys are preferred (`keep_voices`). A step where the
  player sounds nothing is not read (the model's place in the bar moves on): a chorale's voices never
  rest between the melody's notes, and after two silent steps read the bundled model drew no voices
  at half to two thirds of the presses, where it now draws them at every one. With
  `delay` L the voices of a step are drawn when the step ends and sounded L steps later: `particles`
  harmonizations run side by side, resampled before every step by how likely each finds the melody's
  note there (harmonize's particle filter), and the one sounded is followed back L steps, so it was
  chosen knowing the melody's next L steps.
- `answer`: the model reads what the player plays; once the player has rested `wait_steps` steps
  after playing, it continues the phrase for `answer_steps` steps, in the key of what was played
  (`key` auto; `scale` mode unless a scale or strategy is given), then listens again. It goes on from
  its state at the phrase's last note, as if the wait had not been (after beats of silence a model of
  chorales expects the piece to have ended), on the clock's metre. A key pressed during the answer
  ends it at once.

The key of `key` auto is the one that best fits every note the player has played so far (`key_of_counts`).
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musiclstm.composing.composer import Composer, Setup, draw_rules, set_up
from musiclstm.composing.loop import limited, resample, trace_back
from musiclstm.composing.melody import melody_nll
from musiclstm.config import (
    AUTO_KEY,
    BEATS_PER_BAR,
    HARMONIZE_LOOKAHEAD,
    KEY_PITCH_CLASSES,
    LOWEST_PITCH,
    MODE_SCALE,
    N_KEYS,
    LiveConfig,
    MusicLSTMError,
)
from musiclstm.music.metrics import key_of_counts
from musiclstm.network.heads import DrawRules
from musiclstm.network.reading import EVENT_WIDTH, open_reader

HARMONY_VOICES = 4  # harmonize: of a NADE head's whole steps, those sounding four keys (SATB) preferred
FIRST_STEP_DRAWS = 8  # answer: draws of its first step, the first that sounds kept (an answer starts with notes)

Change = tuple[int, bool]  # (MIDI pitch, is_on): a note the model starts or ends


class Partner:
    """A trained model playing along with a player, step by step (see the module's docstring)."""

    def __init__(
        self,
        setup: Setup,
        mode: str = "harmonize",
        delay: int = 0,
        wait_steps: int = 8,
        answer_steps: int = 32,
        particles: int = 1,
    ):
        self.model, self.options, self.mode = setup.model, setup.options, mode
        self.delay, self.wait_steps, self.answer_steps, self.particles = delay, wait_steps, answer_steps, particles
        self.steps_per_beat = setup.composer.steps_per_beat
        self.generator = torch.Generator().manual_seed(self.options.seed)
        self.previous = torch.zeros(particles, N_KEYS, dtype=torch.bool)  # keys sounding the step before
        silence = np.zeros((1, 0, EVENT_WIDTH), dtype=bool)
        with torch.inference_mode():  # a step drawn and read first warms the kernels: the player would hear its ms
            warming = open_reader(self.model, silence, setup.context, particles, setup.composer.grid)
            warming.read(self.model.draw(warming.features, self.previous, DrawRules()).float())
            self.reader = open_reader(self.model, silence, setup.context, particles, setup.composer.grid)
        self.step = 0  # the step now sounding, from 0
        self.held: set[int] = set()  # key indices the player holds
        self.struck: set[int] = set()  # key indices the player pressed during this step
        self.frame = torch.zeros(particles, EVENT_WIDTH, dtype=torch.bool)  # this step's events, read when it ends
        self.sounding: set[int] = set()  # key indices the model sounds
        self.restruck: set[int] = set()  # key indices the model has struck during this step
        self.played = np.zeros(12)  # the player's sounding key-steps by pitch class, C first
        self.key = self.options.key if self.options.key != AUTO_KEY else None  # the key kept to (None: none yet)
        self.key_rules = self.rules_in(self.key)  # the settings' rules and the key's mask, made again as it changes
        self.voices_heard = np.zeros(N_KEYS + 1, dtype=np.int64)  # answer: the player's steps by keys sounding
        self.voices = 1  # answer: the keys the answer prefers to sound at once (the player's most common)
        self.phrase_end = None  # answer: the reader and the keys sounding after the player's last sounding step
        self.answering = 0  # steps of the answer still to draw (answer mode)
        self.resting = 0  # steps since the player last sounded a key
        self.heard = False  # the player played since the model last answered
        self.past: deque = deque(maxlen=delay + 1)  # delay: the last steps' (frames, parents, melody)

    def find_key(self) -> str | None:
        """The key the model keeps to: the one asked for, or for auto the best fit of what was played (None before)."""
        if self.options.key != AUTO_KEY:
            return self.options.key
        found = key_of_counts(self.played)
        if found is None or self.options.effective_scale in (None, MODE_SCALE):
            return found
        return found.split()[0]  # a named scale takes the key's root alone

    @property
    def idle(self) -> bool:
        """Nothing held, nothing sounding and nothing owed: a replayed performance may end here."""
        if self.mode == "answer":
            owed = self.answering > 0 or self.heard
        else:
            owed = any(melody is not None for *_, melody in self.past)
        return not self.held and not self.sounding and not owed

    def rules_in(self, key: str | None) -> DrawRules:
        """The settings' draw rules with the mask of `key` (None: no key yet, no mask)."""
        rules = draw_rules(self.options, [key or "C"])
        return rules if key is not None else replace(rules, allowed=None)

    def rules(
        self, may_sound: torch.Tensor | None = None, forced: torch.Tensor | None = None, voices: int = 0
    ) -> DrawRules:
        """The draw rules of this step: the key's mask with `may_sound` (88,), `forced` (88,) on, and of a NADE
        head's whole steps those sounding `voices` keys preferred (where `keep_voices`; 0: none)."""
        rules = limited(self.key_rules, self.key_rules.allowed, may_sound, forced, self.particles)
        if voices and self.options.keep_voices:
            rules = replace(rules, voices=torch.full((self.particles,), voices))
        return rules

    @torch.inference_mode()
    def press(self, pitch: int) -> list[Change]:
        """The player presses `pitch`: in harmonize without delay, the step's voices drawn again under it."""
        key_index = pitch - LOWEST_PITCH
        if not 0 <= key_index < N_KEYS:
            return []
        self.held.add(key_index)
        self.struck.add(key_index)
        if self.mode == "answer":
            stopped, self.answering = self.answering > 0, 0
            return self.sound(set(), set()) if stopped else []
        return self.harmonize_now() if self.delay == 0 else []

    @torch.inference_mode()
    def release(self, pitch: int) -> list[Change]:
        """The player lets `pitch` go: in harmonize without delay, silence once no key is held, else the voices
        drawn again under the highest key still held."""
        key_index = pitch - LOWEST_PITCH
        if key_index not in self.held:
            return []
        top = max(self.held)
        self.held.discard(key_index)
        if self.mode == "answer" or self.delay > 0:
            return []
        if not self.held:
            return self.sound(set(), set())
        return self.harmonize_now() if max(self.held) != top else []

    @torch.inference_mode()
    def tick(self) -> list[Change]:
        """The step ends: the model reads it, and the next begins with the notes it sounds."""
        sounding = self.held | self.struck
        np.add.at(self.played, [KEY_PITCH_CLASSES[key_index] for key_index in sounding], 1)
        key = self.find_key()
        if key != self.key:
            self.key, self.key_rules = key, self.rules_in(key)
        self.resting = 0 if sounding else self.resting + 1
        if self.mode == "answer":
            return self.listen_or_answer(sounding)
        if self.delay > 0:
            return self.harmonize_late()
        if not sounding:  # a rest is not read: the model's place in the bar moves on
            self.skip()
            return self.silent_step()
        self.read(self.frame)
        return self.harmonize_now() if self.held else self.silent_step()

    def listen_or_answer(self, sounding: set[int]) -> list[Change]:
        """Answer mode, at a step's end: read the answer's step, or the player's (the state after the phrase's last
        sounding step kept), then draw the answer's next step where one is due."""
        if self.answering:
            self.read(self.frame)
            return self.answer_next()
        self.read(self.player_frame())
        if sounding:
            self.heard = True
            self.voices_heard[len(sounding)] += 1
            after = copy.copy(self.reader)
            after.select(torch.arange(self.particles))  # its own copy of the state, which reading changes in place
            self.phrase_end = (after, self.previous)
        return self.answer_next()

    def all_off(self) -> list[Change]:
        """Every note the model sounds, ended (the performance stops)."""
        return self.sound(set(), set())

    def read(self, frame: torch.Tensor) -> None:
        """Read the ending step's events (particles, 176) and begin the next."""
        self.reader.read(frame.float())
        self.previous = frame[:, :N_KEYS]
        self.next_step()

    def skip(self) -> None:
        """Begin the next step without reading the ending one: the model's place in the bar moves on with the clock."""
        self.reader.position += 1
        self.next_step()

    def next_step(self) -> None:
        self.step += 1
        self.struck.clear()
        self.restruck.clear()

    def silent_step(self) -> list[Change]:
        self.frame = torch.zeros_like(self.frame)
        return self.sound(set(), set())

    def player_frame(self) -> torch.Tensor:
        """This step's events as the player plays them: the keys held or pressed during it, struck where pressed."""
        keys = torch.zeros(N_KEYS, dtype=torch.bool)
        keys[list(self.held | self.struck)] = True
        struck = torch.zeros(N_KEYS, dtype=torch.bool)
        struck[list(self.struck)] = True
        struck |= keys & ~self.previous[0]
        return torch.cat([keys, struck]).expand(self.particles, -1).clone()

    def melody(self) -> int | None:
        """The top voice now: the highest key held, else the highest pressed during this step; None at a rest."""
        return max(self.held) if self.held else max(self.struck) if self.struck else None

    def under(self, melody: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The melody's key forced, and the keys that may sound (it and those under it), each (88,) bool."""
        forced = torch.zeros(N_KEYS, dtype=torch.bool)
        forced[melody] = True
        return forced, torch.arange(N_KEYS) <= melody

    def draw_under(self, melody: int | None) -> torch.Tensor:
        """This step's events for every particle (particles, 176): the voices drawn under `melody`, or silence."""
        if melody is None:
            return torch.zeros(self.particles, EVENT_WIDTH, dtype=torch.bool)
        forced, below = self.under(melody)
        struck = (forced & (melody in self.struck)).expand(self.particles, -1)
        rules = self.rules(below, forced, HARMONY_VOICES)
        return self.model.draw(self.reader.features, self.previous, rules, self.generator, struck)

    def harmonize_now(self) -> list[Change]:
        """Draw this step under the player's top key and sound the voices below it (harmonize, no delay)."""
        melody = self.melody()
        self.frame = self.draw_under(melody)
        return self.sound_frame(self.frame[0], melody)

    def harmonize_late(self) -> list[Change]:
        """Draw the ending step under its melody for every particle, resampled by that melody, read it, and sound
        the step `delay` steps back of the first particle's line (harmonize with delay)."""
        melody = self.melody()
        chosen = None
        if melody is not None and self.particles > 1 and self.step > 0:
            forced, below = self.under(melody)
            nll = melody_nll(self.model, self.reader.features, 0, forced[None], below[None], self.previous)
            chosen = resample(-nll.view(1, -1), self.generator)
            self.reader.select(chosen)
            self.previous = self.previous[chosen]
        frame = self.draw_under(melody)
        self.past.append((frame, chosen, melody))
        if melody is None:
            self.skip()
        else:
            self.read(frame)
        if len(self.past) <= self.delay:
            return []
        frames, parents, melodies = zip(*self.past, strict=True)
        sounded = trace_back(list(frames), list(parents), torch.tensor([0]))[0, 0]
        return self.sound_frame(sounded, melodies[0])

    def answer_next(self) -> list[Change]:
        """In answer mode, at the start of a step: the answer's next step, its first once the player has rested
        `wait_steps` after playing, or silence as it ends."""
        if not self.answering and self.heard and self.resting >= self.wait_steps:
            self.answering, self.heard = self.answer_steps, False
            position = self.reader.position
            self.reader, self.previous = self.phrase_end
            self.reader.position = position  # on the clock's metre
            self.voices = int(self.voices_heard.argmax())
            self.voices_heard[:] = 0
        if not self.answering:
            return self.sound(set(), set()) if self.sounding else []
        self.answering -= 1
        rules = self.rules(voices=self.voices)
        for _ in range(FIRST_STEP_DRAWS if self.answering == self.answer_steps - 1 else 1):
            self.frame = self.model.draw(self.reader.features, self.previous, rules, self.generator)
            if self.frame[:, :N_KEYS].any():
                break
        return self.sound_frame(self.frame[0], None)

    def sound_frame(self, frame: torch.Tensor, melody: int | None) -> list[Change]:
        """Sound one step's events (176,) bool but the player's `melody` key."""
        keys = set(frame[:N_KEYS].nonzero().flatten().tolist()) - {melody}
        return self.sound(keys, set(frame[N_KEYS:].nonzero().flatten().tolist()))

    def sound(self, keys: set[int], struck: set[int]) -> list[Change]:
        """The changes that make the model sound `keys`: the notes it ends, then those it strikes (a sounding key
        in `struck` is struck again, once a step)."""
        again = (keys & self.sounding & struck) - self.restruck
        ending = sorted((self.sounding - keys) | again)
        starting = sorted((keys - self.sounding) | again)
        self.restruck |= again | (keys - self.sounding)
        self.sounding = set(keys)
        return [(key_index + LOWEST_PITCH, False) for key_index in ending] + [
            (key_index + LOWEST_PITCH, True) for key_index in starting
        ]


def open_partner(model: str | Path | Composer | None = None, live: LiveConfig | None = None, **settings) -> Partner:
    """Open a model to play along with a player (`Partner`) as `live` says (its mode, delay, lookahead, wait, bars).

    Args:
        model: a run or model folder, or a Composer (None: the bundled model).
        live: how to play along (default LiveConfig(): harmonize at once); its ports and files are not read here.
        **settings: fields of GenerationSettings (temperature, key, scale, choose, seed, ...); length and
            num_outputs mean nothing here. An answer keeps to the key (`scale` mode) unless a scale or a
            strategy is given.

    Raises:
        MusicLSTMError: a bad model or setting.
    """
    live = live or LiveConfig()
    for name in ("length", "num_outputs"):
        if name in settings:
            raise MusicLSTMError(f"{name} means nothing when playing live: the player decides")
    if live.mode == "answer" and "scale" not in settings and "strategy" not in settings:
        settings = dict(settings, scale=MODE_SCALE)  # an answer in your key: the strategy's own has no key mask
    setup = set_up(model, settings)
    sampled = setup.options.choose == "sample"
    particles = (live.lookahead or HARMONIZE_LOOKAHEAD) if live.delay and sampled else 1
    beat = setup.composer.steps_per_beat
    wait_steps = max(1, round(live.wait * beat))
    return Partner(setup, live.mode, live.delay, wait_steps, live.bars * BEATS_PER_BAR * beat, particles)
