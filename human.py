"""Drive with the keyboard and record each finished episode as a demonstration.

Keys (hold them; several at once combine):
  Left / Right   steer full left / right
  Up             gas (full)
  Down           brake (0.8: strong, but below the 0.9 at which CarRacing locks the wheels)
  Enter or R     restart this track and discard the current episode
  Escape         quit (the current, unfinished episode is discarded; finished ones are already saved)
  closing the window quits too
An episode finishes when the lap is complete, the car leaves the playfield, or after --max_frames frames.
Tracks come from the training range, drawn deterministically from --seed, and are stored with the episode.

--noise S (DART, try 0.05): the car executes your steering plus gaussian noise of std S, drawn anew
every frame, so it drifts a little off the line you steer, on screen as in the physics, and you correct
it as you would any slip. Your keys are recorded as the action, the perturbed steering as
executed_actions. Careful laps never leave the ideal line, so their clone has never seen how to come
back to it and drifts off at its first mistake; these corrections are what it needs to learn.
--shove P (recovery laps, try 0.01): now and then the car is shoved off its line as in `test --shove` (a full
random steer without gas for 16 frames, the same shoves on the same track); your keys during a shove are recorded,
but what counts is the way back after it. Given to `train_rl --critic_dataset`, such laps teach the critic the value
of coming back to the road and the actor the way, which careful laps never show.
--autopilot lets the autopilot drive in your place through the same recorder (the stand-in for a
person in bench/human_dart.py); its episodes are stored with source 'expert'.

    python main.py human --dataset my_laps --noise 0.05
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import numpy as np
import pygame

import demos
from env import TRAIN_SEED_LIMIT, EnvConfig, make_env
from errors import UserError
from evaluate import check_shove
from expert import STYLES, Autopilot, Driver, autopilot_driver, check_noise, record_episode

STEER_LEFT, STEER_RIGHT, GAS, BRAKE = pygame.K_LEFT, pygame.K_RIGHT, pygame.K_UP, pygame.K_DOWN
RESTART_KEYS = (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_r)
BRAKE_STRENGTH = 0.8


def keys_to_action(held: set[int] | frozenset[int]) -> np.ndarray:
    """(steer, gas, brake) for the set of held keys. Left and right together cancel out."""
    steer = float(STEER_RIGHT in held) - float(STEER_LEFT in held)
    gas = 1.0 if GAS in held else 0.0
    brake = BRAKE_STRENGTH if BRAKE in held else 0.0
    return np.array([steer, gas, brake], dtype=np.float32)


@dataclass
class KeyboardState:
    """Held keys and pending commands, updated from pygame events once per frame.

    Held keys are tracked from KEYDOWN/KEYUP events rather than ``pygame.key.get_pressed()``, so
    events posted with ``pygame.event.post`` (tests, scripted input) drive the car like real keys.
    """

    held: set[int] = field(default_factory=set)
    quit: bool = False
    restart: bool = False

    def update(self, events: list[pygame.event.Event]) -> None:
        for event in events:
            if event.type == pygame.QUIT:
                self.quit = True
            elif event.type == pygame.KEYDOWN:
                if event.key == pygame.K_ESCAPE:
                    self.quit = True
                elif event.key in RESTART_KEYS:
                    self.restart = True
                else:
                    self.held.add(event.key)
            elif event.type == pygame.KEYUP:
                self.held.discard(event.key)

    def interrupted(self) -> bool:
        """Read the window's events; whether the person quit or restarted the episode."""
        self.update(pygame.event.get())
        return self.quit or self.restart

    def driver(self) -> Driver:
        """The held keys as a driver for ``record_episode``."""
        return lambda car_racing, frame: keys_to_action(self.held)


def track_seeds(seed: int):
    """Endless deterministic stream of training-track seeds."""
    rng = np.random.default_rng(seed)
    while True:
        yield int(rng.integers(TRAIN_SEED_LIMIT))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    demos.add_epilog(parser, __doc__)
    parser.add_argument("--dataset", required=True, help="dataset name: episodes go to data/<dataset>/")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sequence of (training) tracks you drive")
    parser.add_argument("--episodes", type=int, default=0, help="stop after recording this many (0 = until Escape)")
    parser.add_argument("--max_frames", type=int, default=1000, help="frame limit per episode (CarRacing's is 1000)")
    parser.add_argument("--noise", type=float, default=0.0,
                        help=f"DART: std of gaussian noise added to the steering the car executes (your keys are "
                             f"recorded); {demos.DART_NOISE} gives laps with recoveries that BC can learn from")
    parser.add_argument("--shove", type=float, default=0.0,
                        help="recovery laps: probability per 2 frames that test --shove's shove pushes the car off its "
                             "line (e.g. 0.01; default 0: none); for train_rl --critic_dataset")
    parser.add_argument("--autopilot", action="store_true",
                        help="the (calm) autopilot drives instead of you, through the same recorder: a stand-in "
                             "for a person, to measure what --noise does")


def run(args: argparse.Namespace) -> int:
    if args.episodes < 0:
        raise UserError(f"--episodes must be >= 0, got {args.episodes}")
    if args.max_frames < 1:
        raise UserError(f"--max_frames must be >= 1, got {args.max_frames}")
    check_noise(args.noise)
    check_shove(args.shove)
    out_dir = demos.recording_dir(args.dataset)
    # One frame per action and no off-track cut-off: the recorded episode is exactly what was driven.
    env = make_env(
        EnvConfig(action_repeat=1, offtrack_limit=0, max_frames=args.max_frames), render_mode="human", pixels=False
    )
    print(__doc__.split("\n\n")[1])
    if args.noise:
        print(f"DART: the car executes your steering plus gaussian noise of std {args.noise}; correct it like any slip")
    if args.shove:
        print("shoves: now and then the car is pushed off its line for a third of a second; drive it back to the road")
    keyboard = KeyboardState()
    if args.autopilot:
        driver, source = autopilot_driver(Autopilot(STYLES["calm"])), "expert"
    else:
        driver, source = keyboard.driver(), "human"
    seeds = track_seeds(args.seed)
    recorded = 0
    try:
        seed = next(seeds)
        while True:
            keyboard.restart = False
            episode = record_episode(env, driver, seed, args.noise, source, keyboard.interrupted, args.shove)
            if keyboard.quit:
                break
            if episode is None:
                print(f"restarting track {seed} (episode discarded)")
                continue
            saved = demos.Episode(**episode, path=demos.write_episode(out_dir, **episode))
            recorded += 1
            lap = " lap complete" if saved.lap_complete else ""
            print(f"track {seed}: raw return {saved.raw_return:.1f} in {len(saved)} frames{lap} -> {saved.path}")
            if args.episodes and recorded >= args.episodes:
                break
            seed = next(seeds)
    finally:
        env.close()
        if out_dir.is_dir() and not any(out_dir.iterdir()):  # quit before the first episode: no empty dataset left
            out_dir.rmdir()
    print(f"recorded {recorded} episodes in {out_dir}" if recorded else "recorded nothing")
    return 0
