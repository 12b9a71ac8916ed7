"""Byte-identical, faster drop-in replacement for gymnasium's ``CarRacing-v3``.

``CarRacingFast`` produces exactly the same observations (every byte), rewards,
termination flags and infos as the stock ``CarRacing`` for the same seed and
action sequence.  Only the ``state_pixels`` rendering path (the one ``step``
uses to build the 96x96 observation) is rewritten; ``human`` and ``rgb_array``
rendering fall back to the stock code.

Stock rendering spends almost all of its time in Python: every frame it builds
~400 grass polygons, rotates every vertex of every grass/road polygon with a
``pygame.math.Vector2`` and culls each polygon separately, creates a new
``pygame.font.Font`` (reading the TTF file) and a new 1000x800 surface.  Here:

* all polygon vertices are transformed and culled in one vectorised numpy pass
  using the *same* float64 operations in the same order as the stock code, so
  the coordinates handed to ``gfxdraw`` are bit-identical;
* polygons that cannot touch any pixel that reaches the observation are
  skipped as well (the 100 rows later hidden under the indicator bar included);
* the full-screen background polygon becomes a ``Surface.fill`` when it
  provably covers the whole surface (not during the zoom-in or near the
  playfield edge, where the stock drawing is used);
* the car is drawn without per-vertex ``Vector2`` objects;
* surfaces, the font and rendered score texts are cached; the vertical flip is
  a numpy copy into a persistent surface.

Observations are returned as writable C-contiguous ``(96, 96, 3)`` uint8 arrays
(stock returns a transposed view; the values are identical).

Extra API for action-repeat wrappers: ``step_physics`` (a ``step`` without
rendering) and ``render_observation`` (the frame ``step`` would have returned).
For videos: ``render_full_view``, the 600x400 picture of ``rgb_array`` rendering,
scaled from the same 1000x800 surface the last observation was scaled from.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pygame
from gymnasium.envs.box2d.car_racing import (
    FPS,
    GRASS_DIM,
    MAX_SHAPE_DIM,
    PLAYFIELD,
    SCALE,
    STATE_H,
    STATE_W,
    VIDEO_H,
    VIDEO_W,
    WINDOW_H,
    WINDOW_W,
    ZOOM,
    CarRacing,
)
from gymnasium.envs.box2d.car_dynamics import SIZE, WHEEL_R, WHEEL_W, WHEEL_WHITE
from gymnasium.error import InvalidAction
from pygame import gfxdraw

# A polygon whose (float) bounding box lies further than this many pixels
# outside the surface cannot change any pixel: gfxdraw truncates vertices to
# integers (< 1 px change), filled polygons only touch pixels inside their
# bounding box and anti-aliased edges touch at most one pixel beside the edge.
_OFFSCREEN_MARGIN = 4.0
# The background quad is replaced by a fill only if its screen-space vertices
# stay below this magnitude.  SDL_gfx's filledPolygon computes scanline
# intersections as ``(65536*(y-y1)/(y2-y1))*(x2-x1) + 65536*x1`` in 32-bit
# ints; with |coords| < 16383 no term can overflow (65536*32766 < 2**31), so
# the rasterised quad really is the geometric quad (+-1 px).  (Also checked
# empirically against the installed pygame up to |coords| ~ 30000.)
_SAFE_COORD = 16000.0

# After the vertical flip, rows >= WINDOW_H - _HIDDEN_ROWS are completely
# painted over by the opaque black indicator bar drawn by _render_indicators
# (rows 700..799), so pre-flip rows < _HIDDEN_ROWS never reach the output.
_HIDDEN_ROWS = int(WINDOW_H / 40.0 * 5)  # == 100

_FONT_SIZE = 42
_TEXT_CENTER = (60, WINDOW_H - WINDOW_H * 2.5 / 40.0)


def _rgb_array(surface: pygame.Surface) -> np.ndarray:
    """Same RGB bytes as stock's transpose(array(pixels3d)), but built in one C
    call and returned as a writable C-contiguous (H, W, 3) array."""
    width, height = surface.get_size()
    rgb = bytearray(pygame.image.tobytes(surface, "RGB"))
    return np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3)


class CarRacingFast(CarRacing):
    """``CarRacing`` with a fast, byte-identical ``state_pixels`` renderer."""

    def __init__(
        self,
        render_mode: str | None = None,
        verbose: bool = False,
        lap_complete_percent: float = 0.95,
        domain_randomize: bool = False,
        continuous: bool = True,
    ) -> None:
        # Same positional order as CarRacing, so EzPickle round-trips.
        super().__init__(
            render_mode=render_mode,
            verbose=verbose,
            lap_complete_percent=lap_complete_percent,
            domain_randomize=domain_randomize,
            continuous=continuous,
        )
        self._world_surf: pygame.Surface | None = None  # drawn un-flipped
        self._flip_surf: pygame.Surface | None = None  # flipped + indicators
        self._car_shapes_for: Any = None  # the Car whose shapes are cached
        self._car_shapes: list = []
        self._state_surf: pygame.Surface | None = None  # 96x96 smoothscale target
        self._geom_for: list | None = None  # the road_poly list the arrays match
        self._base_x = np.empty((0, 4))
        self._base_y = np.empty((0, 4))
        self._n_grass = 0
        self._road_colors: list = []
        self._bg_fill_cache: dict[tuple, pygame.Color] = {}
        self._font: pygame.font.Font | None = None
        self._text_cache: dict[str, tuple[pygame.Surface, pygame.Rect]] = {}
        # Reward shown in the score text of the current frame: step renders
        # *before* subtracting the 0.1 time penalty, so keep that value around.
        self._reward_at_render = 0.0

    # ------------------------------------------------------------------ API
    def step_physics(
        self, action: np.ndarray | int | None
    ) -> tuple[None, float, bool, bool, dict[str, Any]]:
        """Exactly ``step`` (physics, reward, termination, info) minus rendering.

        Returns ``(None, reward, terminated, truncated, info)``.  Use
        ``render_observation`` to obtain the frame ``step`` would have returned.
        """
        assert self.car is not None
        if action is not None:
            if self.continuous:
                action = action.astype(np.float64)
                self.car.steer(-action[0])
                self.car.gas(action[1])
                self.car.brake(action[2])
            else:
                if not self.action_space.contains(action):
                    raise InvalidAction(
                        f"you passed the invalid action `{action}`. "
                        f"The supported action_space is `{self.action_space}`"
                    )
                self.car.steer(-0.6 * (action == 1) + 0.6 * (action == 2))
                self.car.gas(0.2 * (action == 3))
                self.car.brake(0.8 * (action == 4))

        self.car.step(1.0 / FPS)
        self.world.Step(1.0 / FPS, 6 * 30, 2 * 30)
        self.t += 1.0 / FPS
        # This is where step() renders; remember the score it would display.
        self._reward_at_render = self.reward

        step_reward = 0
        terminated = False
        truncated = False
        info: dict[str, Any] = {}
        if action is not None:
            self.reward -= 0.1
            self.car.fuel_spent = 0.0
            step_reward = self.reward - self.prev_reward
            self.prev_reward = self.reward
            if self.tile_visited_count == len(self.track) or self.new_lap:
                terminated = True
                info["lap_finished"] = True
            x, y = self.car.hull.position
            if abs(x) > PLAYFIELD or abs(y) > PLAYFIELD:
                terminated = True
                info["lap_finished"] = False
                step_reward = -100
        return None, step_reward, terminated, truncated, info

    def render_observation(self) -> np.ndarray:
        """The 96x96x3 observation ``step`` would have returned for the current state."""
        self.state = self._render_state(self._reward_at_render)
        return self.state

    def render_full_view(self) -> np.ndarray:
        """The (400, 600, 3) uint8 ``rgb_array`` view of the last rendered observation's moment.

        A smoothscale of the surface the observation came from (~1 ms instead of ~8 ms for stock
        ``rgb_array`` rendering). Identical to stock's picture except that skid marks are not drawn:
        they would have to go on that surface, and the observation must stay byte-identical.
        """
        if self._flip_surf is None:
            raise RuntimeError("render_full_view needs reset() first")
        scaled = pygame.transform.smoothscale(self._flip_surf, (VIDEO_W, VIDEO_H))
        return _rgb_array(scaled)

    # ------------------------------------------------------------ rendering
    def _render(self, mode: str):
        if mode != "state_pixels":
            return super()._render(mode)  # human / rgb_array: stock path
        return self._render_state(self.reward)

    def _ensure_geometry(self) -> None:
        """Cache vertex arrays of grass + road polygons (rebuilt per track)."""
        if self._geom_for is self.road_poly:
            return
        polys: list[list[tuple[float, float]]] = []
        # Same float expressions as CarRacing._render_road -> identical values.
        for x in range(-20, 20, 2):
            for y in range(-20, 20, 2):
                polys.append(
                    [
                        (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + 0),
                        (GRASS_DIM * x + 0, GRASS_DIM * y + 0),
                        (GRASS_DIM * x + 0, GRASS_DIM * y + GRASS_DIM),
                        (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM),
                    ]
                )
        self._n_grass = len(polys)
        polys.extend([(p[0], p[1]) for p in poly] for poly, _ in self.road_poly)
        arr = np.array(polys, dtype=np.float64)  # (N, 4, 2)
        # Stored as (4, N) so per-polygon min/max are cheap elementwise ops.
        self._base_x = np.ascontiguousarray(arr[:, :, 0].T)
        self._base_y = np.ascontiguousarray(arr[:, :, 1].T)
        # Keep references: tile colours are mutated in place on contact.
        self._road_colors = [color for _, color in self.road_poly]
        self._geom_for = self.road_poly

    def _bg_fill_color(self) -> pygame.Color:
        """The exact pixel value gfxdraw.filled_polygon writes for bg_color.

        Found by drawing with the very same colour object on a probe surface of
        the same pixel format, so colour conversion quirks (float arrays) match.
        """
        key = tuple(float(c) for c in self.bg_color)
        color = self._bg_fill_cache.get(key)
        if color is None:
            probe = pygame.Surface((8, 8))
            gfxdraw.filled_polygon(
                probe, [(-20, -20), (30, -20), (30, 30), (-20, 30)], self.bg_color
            )
            color = probe.get_at((4, 4))
            self._bg_fill_cache[key] = color
        return color

    @staticmethod
    def _covers_screen(qx: list[float], qy: list[float]) -> bool:
        """True if convex quad (qx, qy) contains the visible surface + margin."""
        if max(map(abs, qx)) >= _SAFE_COORD or max(map(abs, qy)) >= _SAFE_COORD:
            return False
        m = _OFFSCREEN_MARGIN
        corners = (
            (-m, _HIDDEN_ROWS - m),
            (WINDOW_W + m, _HIDDEN_ROWS - m),
            (WINDOW_W + m, WINDOW_H + m),
            (-m, WINDOW_H + m),
        )
        crosses = []
        for i in range(4):
            ax, ay = qx[i - 1], qy[i - 1]
            ex, ey = qx[i] - ax, qy[i] - ay
            crosses.extend(ex * (py - ay) - ey * (px - ax) for px, py in corners)
        # All corners strictly on the same side of every edge -> inside.
        return all(v > 0 for v in crosses) or all(v < 0 for v in crosses)

    def _text(self, reward: float) -> tuple[pygame.Surface, pygame.Rect]:
        # Font rendering is deterministic, so a cached surface is identical.
        if not pygame.font.get_init():  # e.g. after pygame.quit() in close()
            pygame.font.init()
            self._font = None
            self._text_cache.clear()
        s = f"{reward:04.0f}"
        hit = self._text_cache.get(s)
        if hit is None:
            if len(self._text_cache) > 4096:
                self._text_cache.clear()
            text = self._render_score(s)
            rect = text.get_rect()
            rect.center = _TEXT_CENTER
            hit = self._text_cache[s] = (text, rect)
        return hit

    def _render_score(self, s: str) -> pygame.Surface:
        if self._font is None:
            self._font = pygame.font.Font(pygame.font.get_default_font(), _FONT_SIZE)
        try:
            return self._font.render(s, True, (255, 255, 255), (0, 0, 0))
        except pygame.error:
            # The font module was quit and initialised again since the font was made (another CarRacing
            # closed in human mode calls pygame.quit(); the next stock render calls font.init()): a font
            # made before is invalid, and pygame offers no way to tell but this error.
            self._font = pygame.font.Font(pygame.font.get_default_font(), _FONT_SIZE)
            return self._font.render(s, True, (255, 255, 255), (0, 0, 0))

    def _render_state(self, reward: float) -> np.ndarray | None:
        """Fast equivalent of ``CarRacing._render('state_pixels')``."""
        if self.clock is None:
            self.clock = pygame.time.Clock()
        if "t" not in self.__dict__:
            return None  # reset() not called yet
        assert self.car is not None
        self._reward_at_render = reward
        self._ensure_geometry()
        if self._world_surf is None:
            # Same constructor as stock -> same pixel format.
            self._world_surf = pygame.Surface((WINDOW_W, WINDOW_H))
            self._flip_surf = pygame.Surface((WINDOW_W, WINDOW_H))
            self._state_surf = pygame.Surface((STATE_W, STATE_H))
        surf = self._world_surf

        # Camera: verbatim from CarRacing._render.
        angle = -self.car.hull.angle
        zoom = 0.1 * SCALE * max(1 - self.t, 0) + ZOOM * SCALE * min(self.t, 1)
        scroll_x = -(self.car.hull.position[0]) * zoom
        scroll_y = -(self.car.hull.position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (WINDOW_W / 2 + trans[0], WINDOW_H / 4 + trans[1])
        tx, ty = trans

        # Vector2.rotate_rad computes (c*x - s*y, s*x + c*y) with libm sin/cos
        # of the angle reduced mod 2pi (exact values at multiples of 90 deg).
        # Rotating (1, 0) yields exactly that (c, s); numpy / Python floats then
        # repeat the same IEEE double operations, giving bit-identical results.
        c, s = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)

        # Background: stock draws the (never culled) playfield quad on a fresh
        # black surface.  Rows < _HIDDEN_ROWS need no paint (see constant).
        visible = (0, _HIDDEN_ROWS, WINDOW_W, WINDOW_H - _HIDDEN_ROWS)
        b = PLAYFIELD
        field = [
            ((c * x - s * y) * zoom + tx, (s * x + c * y) * zoom + ty)
            for x, y in ((b, b), (b, -b), (-b, -b), (-b, b))
        ]
        qx = [p[0] for p in field]
        qy = [p[1] for p in field]
        if self._covers_screen(qx, qy):
            # Every visible pixel would get the filled colour and the
            # anti-aliased edges are off-surface, so a plain fill is identical.
            surf.fill(self._bg_fill_color(), visible)
        else:  # e.g. during the zoom-in: draw exactly as stock
            surf.fill((0, 0, 0), visible)
            gfxdraw.aapolygon(surf, field, self.bg_color)
            gfxdraw.filled_polygon(surf, field, self.bg_color)

        # Grass + road, all polygons at once; arrays are (4 vertices, N).
        bx, by = self._base_x, self._base_y
        X = (c * bx - s * by) * zoom + tx
        Y = (s * bx + c * by) * zoom + ty
        # Stock culling rule: draw iff some vertex is in the enlarged screen.
        lo, hi_x, hi_y = -MAX_SHAPE_DIM, WINDOW_W + MAX_SHAPE_DIM, WINDOW_H + MAX_SHAPE_DIM
        inside = (X >= lo) & (X <= hi_x) & (Y >= lo) & (Y <= hi_y)
        keep = inside[0] | inside[1] | inside[2] | inside[3]
        # Additionally drop polygons that cannot touch a visible pixel.
        m = _OFFSCREEN_MARGIN
        keep &= np.maximum(np.maximum(X[0], X[1]), np.maximum(X[2], X[3])) >= -m
        keep &= np.minimum(np.minimum(X[0], X[1]), np.minimum(X[2], X[3])) <= WINDOW_W + m
        keep &= np.maximum(np.maximum(Y[0], Y[1]), np.maximum(Y[2], Y[3])) >= _HIDDEN_ROWS - m
        keep &= np.minimum(np.minimum(Y[0], Y[1]), np.minimum(Y[2], Y[3])) <= WINDOW_H + m
        idx = np.flatnonzero(keep)
        if idx.size:
            # (n, 4, 2) nested lists of Python floats, same values as stock.
            pts = np.stack((X[:, idx].T, Y[:, idx].T), axis=2).tolist()
            n_grass = self._n_grass
            grass_color = self.grass_color
            road_colors = self._road_colors
            aapolygon = gfxdraw.aapolygon
            filled_polygon = gfxdraw.filled_polygon
            for i, poly in zip(idx.tolist(), pts):
                if i < n_grass:
                    color = grass_color
                else:  # read the *current* tile colour, converted as stock does
                    color = [int(v) for v in road_colors[i - n_grass]]
                aapolygon(surf, poly, color)
                filled_polygon(surf, poly, color)

        self._draw_car(surf, zoom, tx, ty, c, s)

        # Vertical flip as a numpy copy into a persistent surface (stock
        # allocates a new one).  Rows >= WINDOW_H - _HIDDEN_ROWS of the flipped
        # image are painted over by the indicator bar, so they are not copied.
        out = self._flip_surf
        src = pygame.surfarray.pixels2d(surf)
        dst = pygame.surfarray.pixels2d(out)
        dst[:, : WINDOW_H - _HIDDEN_ROWS] = src[:, WINDOW_H - 1 : _HIDDEN_ROWS - 1 : -1]
        del src, dst  # release the surface locks before drawing / blitting

        self.surf = out
        self._render_indicators(WINDOW_W, WINDOW_H)
        text, rect = self._text(reward)
        out.blit(text, rect)

        scaled = pygame.transform.smoothscale(out, (STATE_W, STATE_H), self._state_surf)
        return _rgb_array(scaled)

    def _draw_car(
        self, surf: pygame.Surface, zoom: float, tx: float, ty: float, c: float, s: float
    ) -> None:
        """``Car.draw(..., draw_particles=False)`` without Vector2 objects.

        World coordinates still come from Box2D's ``transform * vertex`` (float32
        maths); rotation/scaling use the same double operations as stock.
        """
        car = self.car
        assert car is not None
        if self._car_shapes_for is not car:
            # Fixture shapes are constant for a car's lifetime: fetch them once.
            self._car_shapes = [
                (obj, [f.shape.vertices for f in obj.fixtures]) for obj in car.drawlist
            ]
            self._car_shapes_for = car
        draw_polygon = pygame.draw.polygon

        def to_screen(trans, vertices) -> list[tuple[float, float]]:
            """Body-local vertices -> screen points, the same float operations as Car.draw."""
            path = []
            for v in vertices:
                w = trans * v
                x, y = w[0], w[1]
                path.append(((c * x - s * y) * zoom + tx, (s * x + c * y) * zoom + ty))
            return path

        for obj, shapes in self._car_shapes:
            color = [int(v * 255) for v in obj.color]
            trans = obj.transform  # == f.body.transform for all its fixtures
            for vertices in shapes:
                draw_polygon(surf, color=color, points=to_screen(trans, vertices))

                if "phase" not in obj.__dict__:
                    continue
                # Wheel rotation stripe, verbatim from Car.draw.
                a1 = obj.phase
                a2 = obj.phase + 1.2  # radians
                s1 = math.sin(a1)
                s2 = math.sin(a2)
                c1 = math.cos(a1)
                c2 = math.cos(a2)
                if s1 > 0 and s2 > 0:
                    continue
                if s1 > 0:
                    c1 = np.sign(c1)
                if s2 > 0:
                    c2 = np.sign(c2)
                white_poly = [
                    (-WHEEL_W * SIZE, +WHEEL_R * c1 * SIZE),
                    (+WHEEL_W * SIZE, +WHEEL_R * c1 * SIZE),
                    (+WHEEL_W * SIZE, +WHEEL_R * c2 * SIZE),
                    (-WHEEL_W * SIZE, +WHEEL_R * c2 * SIZE),
                ]
                draw_polygon(surf, color=WHEEL_WHITE, points=to_screen(trans, white_poly))
