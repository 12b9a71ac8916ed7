"""Byte-identity tests for fast_car_racing.CarRacingFast against stock CarRacing-v3."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fast_car_racing import CarRacingFast  # noqa: E402


def random_actions(seed: int, n: int) -> list[np.ndarray]:
    """Random continuous actions; the first 120 mostly accelerate so the car
    drives over tiles (colour changes, rewards) and leaves the start zoom."""
    rng = np.random.default_rng(seed)
    acts = []
    for i in range(n):
        a = rng.uniform([-1, 0, 0], [1, 1, 1]).astype(np.float32)
        if i < 120:
            a[0] *= 0.3
            a[1] = max(a[1], 0.5)
            a[2] = 0.0
        acts.append(a)
    return acts


@pytest.mark.parametrize(
    "seed, domain_randomize", [(0, False), (7, False), (3, True)]
)
def test_byte_identical_to_stock(seed: int, domain_randomize: bool) -> None:
    stock = gym.make("CarRacing-v3", domain_randomize=domain_randomize)
    fast = CarRacingFast(domain_randomize=domain_randomize)
    obs_s, _ = stock.reset(seed=seed)
    obs_f, _ = fast.reset(seed=seed)
    assert obs_f.dtype == np.uint8 and obs_f.shape == (96, 96, 3)
    assert np.array_equal(obs_s, obs_f)

    episodes = [(None, 300)]
    if domain_randomize:  # also a second episode keeping / changing colours
        episodes.append(({"randomize": False}, 60))
    for options, frames in episodes:
        if options is not None:
            obs_s, _ = stock.reset(options=options)
            obs_f, _ = fast.reset(options=options)
            assert np.array_equal(obs_s, obs_f)
        for i, a in enumerate(random_actions(seed + 100, frames)):
            obs_s, r_s, term_s, trunc_s, info_s = stock.step(a)
            obs_f, r_f, term_f, trunc_f, info_f = fast.step(a)
            assert np.array_equal(obs_s, obs_f), f"frame {i} differs"
            assert (r_s, term_s, info_s) == (r_f, term_f, info_f), f"frame {i}"
            assert not trunc_f
            if term_s:
                break
    assert fast.tile_visited_count > 0  # tile colours did change
    stock.close()
    fast.close()


def test_discrete_actions_identical() -> None:
    stock = gym.make("CarRacing-v3", continuous=False)
    fast = CarRacingFast(continuous=False)
    assert np.array_equal(stock.reset(seed=11)[0], fast.reset(seed=11)[0])
    rng = np.random.default_rng(11)
    for i in range(80):
        a = 3 if i < 40 else int(rng.integers(5))
        s, f = stock.step(a), fast.step(a)
        assert np.array_equal(s[0], f[0]) and s[1:] == f[1:], f"frame {i}"


def test_step_physics_and_render_observation() -> None:
    """k-1 step_physics + step (action repeat) == k plain steps of stock."""
    k = 4
    stock = gym.make("CarRacing-v3").unwrapped
    fast = CarRacingFast()
    stock.reset(seed=5)
    fast.reset(seed=5)
    acts = random_actions(5, 160)
    for j in range(0, len(acts), k):
        for i, a in enumerate(acts[j : j + k]):
            ref = stock.step(a)
            if i < k - 1:
                got = fast.step_physics(a)
                assert got[0] is None
                assert got[1:] == ref[1:]
                if i == 0:  # the frame step() would have produced right now
                    assert np.array_equal(fast.render_observation(), ref[0])
            else:
                got = fast.step(a)
                assert np.array_equal(got[0], ref[0])
                assert got[1:] == ref[1:]
        assert np.array_equal(fast.render_observation(), ref[0])


def test_check_env() -> None:
    check_env(CarRacingFast(), skip_render_check=True)


def test_rgb_array_mode_matches_stock() -> None:
    stock = gym.make("CarRacing-v3", render_mode="rgb_array").unwrapped
    fast = CarRacingFast(render_mode="rgb_array")
    stock.reset(seed=2)
    fast.reset(seed=2)
    for a in random_actions(2, 60):
        s, f = stock.step(a), fast.step(a)
        assert np.array_equal(s[0], f[0])
    img_s, img_f = stock.render(), fast.render()
    assert img_f.shape == (400, 600, 3)
    assert np.array_equal(img_s, img_f)


def test_renders_after_another_env_closed_in_human_mode() -> None:
    """Closing a human-mode CarRacing calls pygame.quit(); the next stock render initialises the font
    module again. A font made before that is invalid in pygame, so our cached one must be replaced."""
    stock = gym.make("CarRacing-v3").unwrapped
    fast = CarRacingFast()
    stock.reset(seed=4)
    fast.reset(seed=4)
    actions = random_actions(4, 80)
    for a in actions[:20]:
        stock.step(a), fast.step(a)
    human = gym.make("CarRacing-v3", render_mode="human")
    human.reset(seed=0)
    human.close()
    for a in actions[20:]:
        s, f = stock.step(a), fast.step(a)  # stock first: its render re-initialises the fonts
        assert np.array_equal(s[0], f[0])
