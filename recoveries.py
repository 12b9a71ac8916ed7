"""Self-imitation of recoveries: the fine-tuning policy's own ways back to the road, kept as demonstrations.

BC from laps that hardly leave the road drives back from a shove about as often as not, and the critic, taught by
the few training excursions, does not steer the actor back more often (README, Results). A recovery that happened
needs no critic to judge it: from the step a training car is found off the road, its policy's actions until it is
back on the road are kept if that took at most `window` steps (the robustness test's 2 s), and the actor's BC term
fits them as it fits the demonstrations' (Oh et al. 2018, self-imitation learning, with the return replaced by
the recovery itself). A failed excursion (longer than the window, or the episode ended) keeps nothing; actions
forced by a training shove are not the policy's and are never kept. The BC features' fitness for this was
measured with bench/frozen_features.py: an actor on the fixed features, cloned from the autopilot's recoveries,
recovered as often as BC trained end to end on them.
"""
from __future__ import annotations

import numpy as np


class RecoveryMemory:
    """A ring of (features, action) pairs from the training episodes' recoveries, and per environment the pairs
    of the excursion in progress."""

    def __init__(self, num_envs: int, feature_dim: int, window: int, steer_offset: float = 0.0, capacity: int = 20_000):
        self.window, self.steer_offset = window, steer_offset
        self.offset = np.zeros(num_envs, np.float32)  # the current excursion's steering offset (`explore`)
        self.features = np.zeros((capacity, feature_dim), np.float32)
        self.actions = np.zeros((capacity, 3), np.float32)
        self.size = self.next = 0
        self.off_road = np.zeros(num_envs, bool)  # the car is off the road at the current observation
        self.pending: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(num_envs)]
        self.steps_away = np.zeros(num_envs, np.int64)  # steps since the car left the road (this excursion)
        self.recoveries = 0  # excursions kept so far

    def __len__(self) -> int:
        return self.size

    def explore(self, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The actions to execute: off the road, the steering shifted by an offset drawn uniformly from
        [-steer_offset, steer_offset] when the excursion starts and held through it, so the recoveries kept
        include ways back the policy itself would not have tried (the policy's spread stays near BC's)."""
        drawn = rng.uniform(-self.steer_offset, self.steer_offset, len(actions)).astype(np.float32)
        self.offset = np.where(self.off_road & (self.steps_away == 0), drawn, self.offset)
        explored = actions.copy()
        explored[:, 0] = np.where(self.off_road, np.clip(actions[:, 0] + self.offset, -1.0, 1.0), actions[:, 0])
        return explored

    def add(self, features: np.ndarray, actions: np.ndarray, chosen: np.ndarray, off_road_next: np.ndarray,
            done: np.ndarray) -> None:
        """One vector step: `features` of the observations the `actions` were taken from, `chosen` whether
        each action was the policy's (not a shove's), then whether the car is off the road at the next
        observation and whether the episode ended."""
        for i in range(len(actions)):
            if self.off_road[i]:
                self.steps_away[i] += 1
                if chosen[i] and self.steps_away[i] <= self.window:
                    self.pending[i].append((features[i], actions[i]))
            back = self.off_road[i] and not off_road_next[i] and not done[i]
            if back and self.steps_away[i] <= self.window:
                self._keep(self.pending[i])
            if back or done[i] or self.steps_away[i] > self.window:
                self.pending[i] = []
            if not self.off_road[i] or back or done[i]:
                self.steps_away[i] = 0
            self.off_road[i] = off_road_next[i] and not done[i]

    def _keep(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        if not pairs:
            return
        self.recoveries += 1
        for features, action in pairs:
            self.features[self.next], self.actions[self.next] = features, action
            self.next = (self.next + 1) % len(self.features)
            self.size = min(self.size + 1, len(self.features))

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rows = rng.integers(0, self.size, size=min(batch_size, self.size))
        return self.features[rows], self.actions[rows]
