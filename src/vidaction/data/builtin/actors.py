"""Actors: body proportions and clothes, one person per id, each held by one split only."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Actor:
    """A person: proportions and clothes. Held by one split only."""

    id: int
    height: float = 1.0          # multiplies the clip's figure scale
    arm: float = 1.0             # limb-length multipliers
    leg: float = 1.0
    torso: float = 1.0
    shoulders: float = 1.0       # shoulder half-width multiplier
    girth: float = 1.0           # limb/torso thickness multiplier
    head: float = 1.0
    skin: tuple[int, int, int] = (224, 180, 150)
    hair: tuple[int, int, int] = (60, 40, 30)
    shirt: tuple[int, int, int] = (200, 60, 60)
    trousers: tuple[int, int, int] = (50, 60, 110)
    shoes: tuple[int, int, int] = (30, 30, 30)
    long_sleeves: bool = False


def _rgb(rng: np.random.Generator, s: tuple[float, float], v: tuple[float, float]) -> tuple:
    h = float(rng.uniform(0, 180))
    hsv = np.uint8([[[h, rng.uniform(*s) * 255, rng.uniform(*v) * 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def sample_actor(seed: int, actor_id: int) -> Actor:
    """One actor, the same for the same (seed, id) whatever else is rendered."""
    rng = np.random.default_rng([seed, 1, actor_id])
    skins = np.array([[255, 219, 190], [234, 189, 157], [198, 140, 100], [141, 85, 54],
                      [90, 56, 37]], float)
    t = rng.uniform(0, len(skins) - 1)
    i = min(int(t), len(skins) - 2)
    skin = skins[i] * (1 - (t - i)) + skins[i + 1] * (t - i)
    hairs = [(20, 20, 20), (70, 45, 25), (140, 90, 40), (200, 170, 100), (150, 150, 150)]
    trousers = [(40, 60, 110), (30, 30, 35), (170, 150, 110), (90, 90, 95), (60, 80, 50)]
    tr = trousers[rng.integers(len(trousers))] if rng.random() < 0.7 else _rgb(
        rng, (0.3, 0.8), (0.25, 0.7))
    return Actor(
        id=actor_id,
        height=float(rng.uniform(0.9, 1.05)),
        arm=float(rng.uniform(0.92, 1.08)),
        leg=float(rng.uniform(0.92, 1.08)),
        torso=float(rng.uniform(0.92, 1.08)),
        shoulders=float(rng.uniform(0.85, 1.15)),
        girth=float(rng.uniform(0.8, 1.25)),
        head=float(rng.uniform(0.9, 1.1)),
        skin=tuple(int(c) for c in skin),
        hair=hairs[rng.integers(len(hairs))],
        shirt=_rgb(rng, (0.45, 0.95), (0.45, 0.95)),
        trousers=tuple(int(c) for c in tr),
        shoes=tuple(int(c) for c in rng.integers(15, 70, 3)),
        long_sleeves=bool(rng.random() < 0.5),
    )
