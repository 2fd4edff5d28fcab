"""RGB frames of environment states, drawn with NumPy alone (gymnasium's `rgb_array` mode).

    frame = render_frame(env, state, params, trail=None)      # (H, W, 3) uint8

A pure function of its arguments: `state` is the functional env's state (one env, not a batch),
`trail` the physical states `x` before it in the same episode, oldest first, shape (T, dim x)
(the gymnasium adapter keeps them; the functional envs keep no history). What a frame shows:

- Lorenz: the x-z projection of phase space, the trail fading with age, the two non-trivial
  equilibria (grey rings), the target equilibrium (green ring), the state (red);
- Kuramoto-Sivashinsky: u(x) now, the target u* (green) and the actuator centres (ticks) above;
  below, the space-time strip of the trail, newest row at the top, u coloured blue (< 0) to
  red (> 0), saturating at |u| = 3;
- the MiniGrid room: its cells from above (y down, as MiniGrid draws it), walls grey, the goal
  green, the agent red with a light dot on the side it faces, its trail;
- Obstacle2D and the room: a top view of the point (red), its trail, the goal (green), the wall or
  the room's walls and obstacles (grey);
- Acrobot: the two links from the pivot, the upright target (green), the tip's trail;
- the vehicles: a top view of the car (red bar from rear to front axle, dark front), its trail,
  the 10 m course circle and the target (green);
- quadrotors and the Crazyflies: a top view (x-y, left) and a side view (x-z, right) of the
  vehicle's arms (drawn at least 3 % of the view wide, so that the attitude shows; the real
  Crazyflie is 8 cm across), its trail, the reference path (grey) and the reference now (green);
- any other environment with `observe(state, params)` (the probes, brax): the observation as
  bars, tanh(obs) of the half-height, red up, blue down.

Every frame ends in a 3-pixel time bar, the fraction `state.time / max_steps_in_episode`.
States outside the view are drawn at its edge; non-finite numbers never reach the pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import numpy as np

from entrolab.envs.acrobot import Acrobot
from entrolab.envs.crazyflie import (
    POSITION,
    QUATERNION,
    ROTOR_X_SIGNS,
    ROTOR_Y_SIGNS,
    TIME,
    Crazyflie,
    reference as crazyflie_reference,
    rotation_matrix,
)
from entrolab.envs.ks import KuramotoSivashinsky
from entrolab.envs.lorenz import Lorenz, lorenz_equilibria
from entrolab.envs.obstacle2d import Obstacle2D
from entrolab.envs.quadrotor import Quadrotor
from entrolab.envs.minigrid_room import MiniGridRoom
from entrolab.envs.room import Room
from entrolab.envs.vehicle import Vehicle, target_position
from entrolab.envs.vehicle_authors import AuthorsVehicle

SIZE = 256  # frame height; a square panel is SIZE x SIZE
TIME_BAR = 3  # rows at the bottom of every frame
DEFAULT_FPS = 20.0  # tasks whose time step is not in seconds

BACKGROUND = (255, 255, 255)
GRID = (228, 228, 228)
FAINT = (190, 190, 190)
INK = (60, 60, 60)
WALL = (110, 110, 110)
STATE = (214, 55, 46)
TRAIL = (50, 100, 200)
TARGET = (40, 160, 70)
NEGATIVE = (40, 70, 170)
GROUND = (150, 110, 70)

Colour = tuple[int, int, int]


@functools.cache
def _jitted(fn: Callable) -> Callable:
    """`jax.jit(fn)`, once per process: the geometry the envs define (equilibria, moving targets)
    is read through them, not rewritten here, and op-by-op JAX would compile every small kernel."""
    return jax.jit(fn)


# ---- drawing on a canvas (in place) ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Panel:
    """Rows [top, top + height) and columns [left, left + width) of a canvas showing the world box
    [u0, u1] x [v0, v1], u to the right and v up."""

    top: int
    left: int
    height: int
    width: int
    u0: float
    u1: float
    v0: float
    v1: float

    def pixels(self, uv: np.ndarray) -> np.ndarray:
        """World points (k, 2) -> pixel centres (k, 2) as (row, column) floats; non-finite
        coordinates go far outside (never drawn, or clamped to the edge)."""
        uv = np.nan_to_num(np.asarray(uv, np.float64).reshape(-1, 2), nan=1e12, posinf=1e12, neginf=-1e12)
        col = self.left + (uv[:, 0] - self.u0) / (self.u1 - self.u0) * self.width - 0.5
        row = self.top + (self.v1 - uv[:, 1]) / (self.v1 - self.v0) * self.height - 0.5
        return np.clip(np.stack([row, col], axis=1), -1e7, 1e7)

    def clamp(self, rc: np.ndarray, inset: float = 2.0) -> np.ndarray:
        """Pixel points moved into the panel (at least `inset` from its edges)."""
        low = np.array([self.top + inset, self.left + inset])
        high = np.array([self.top + self.height - 1 - inset, self.left + self.width - 1 - inset])
        return np.clip(rc, low, high)

    def scale(self) -> float:
        """Pixels per world unit along u."""
        return self.width / (self.u1 - self.u0)


def panel(top: int, left: int, height: int, width: int, u_range, v_range, equal: bool = True,
          margin: int = 8) -> Panel:
    """A panel whose `margin`-pixel inset shows at least u_range x v_range; with `equal`, one world
    unit has the same length along u and v (the shorter range is widened, centred)."""
    (u0, u1), (v0, v1) = (float(u_range[0]), float(u_range[1])), (float(v_range[0]), float(v_range[1]))
    if not (u1 > u0 and v1 > v0 and math.isfinite(u1 - u0) and math.isfinite(v1 - v0)):
        raise ValueError(f"a panel needs finite increasing ranges, got u {u_range}, v {v_range}")
    su, sv = (width - 2 * margin) / (u1 - u0), (height - 2 * margin) / (v1 - v0)
    if equal:
        su = sv = min(su, sv)
    uc, vc = 0.5 * (u0 + u1), 0.5 * (v0 + v1)
    hu, hv = 0.5 * width / su, 0.5 * height / sv
    return Panel(top, left, height, width, uc - hu, uc + hu, vc - hv, vc + hv)


@functools.lru_cache(maxsize=16)
def _disc_offsets(radius: float) -> np.ndarray:
    """Integer (row, column) offsets of the pixels of a disc, shape (m, 2)."""
    r = max(int(math.ceil(radius)), 0)
    d = np.arange(-r, r + 1)
    dr, dc = np.meshgrid(d, d, indexing="ij")
    inside = dr**2 + dc**2 <= radius**2 + 0.5 * radius + 0.25
    return np.stack([dr[inside], dc[inside]], axis=1)


def _colours(colour, k: int) -> np.ndarray:
    """One colour, or one per item, as (k, 3) uint8."""
    c = np.asarray(colour, np.float64)
    return np.broadcast_to(np.clip(np.rint(c), 0, 255).astype(np.uint8), (k, 3))


def dots(canvas: np.ndarray, p: Panel, rc: np.ndarray, colour, radius: float) -> None:
    """Discs of `radius` pixels at pixel points rc (k, 2), cut to the panel."""
    rc = np.asarray(rc, np.float64).reshape(-1, 2)
    if rc.shape[0] == 0:
        return
    off = _disc_offsets(float(radius))
    rows = np.rint(rc[:, 0]).astype(np.int64)[:, None] + off[None, :, 0]
    cols = np.rint(rc[:, 1]).astype(np.int64)[:, None] + off[None, :, 1]
    colours = np.broadcast_to(_colours(colour, rc.shape[0])[:, None, :], (*rows.shape, 3))
    keep = (rows >= p.top) & (rows < p.top + p.height) & (cols >= p.left) & (cols < p.left + p.width)
    canvas[rows[keep], cols[keep]] = colours[keep]


def _clip_segments(a: np.ndarray, b: np.ndarray, p: Panel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments a -> b (k, 2 pixel points) cut to the panel (slab method): (a', b', kept)."""
    low = np.array([p.top - 1.0, p.left - 1.0])
    high = np.array([p.top + p.height, p.left + p.width], np.float64)
    d = b - a
    still = np.abs(d) < 1e-12
    d_safe = np.where(still, 1.0, d)
    t1, t2 = (low - a) / d_safe, (high - a) / d_safe
    inside = (a >= low) & (a <= high)
    t_in = np.where(still, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2)).max(axis=1)
    t_out = np.where(still, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2)).min(axis=1)
    t_in, t_out = np.maximum(t_in, 0.0), np.minimum(t_out, 1.0)
    kept = t_in <= t_out  # then both are in [0, 1]
    t_in, t_out = np.where(kept, t_in, 0.0), np.where(kept, t_out, 0.0)
    return a + t_in[:, None] * d, a + t_out[:, None] * d, kept


def polyline(canvas: np.ndarray, p: Panel, rc: np.ndarray, colour, width: float = 1.0) -> None:
    """Segments between consecutive pixel points rc (k, 2), `width` pixels thick; `colour` is one
    colour or one per segment (k - 1, 3). Sampled at most one pixel apart, after cutting each
    segment to the panel (a far-away point costs no more than a near one)."""
    rc = np.asarray(rc, np.float64).reshape(-1, 2)
    if rc.shape[0] < 2:
        dots(canvas, p, rc, colour if np.ndim(colour) == 1 else np.asarray(colour)[:1], width / 2)
        return
    colours = _colours(colour, rc.shape[0] - 1)
    a, b, kept = _clip_segments(rc[:-1], rc[1:], p)
    a, b, colours = a[kept], b[kept], colours[kept]
    if a.shape[0] == 0:
        return
    counts = np.ceil(np.max(np.abs(b - a), axis=1)).astype(np.int64) + 1
    seg = np.repeat(np.arange(a.shape[0]), counts)
    start = np.repeat(np.cumsum(counts) - counts, counts)
    t = (np.arange(seg.shape[0]) - start) / np.maximum(counts[seg] - 1, 1)
    points = a[seg] + t[:, None] * (b[seg] - a[seg])
    dots(canvas, p, points, colours[seg], max(width - 1.0, 0.0) / 2.0)


def ring(canvas: np.ndarray, p: Panel, centre_uv, radius: float, colour, width: float = 1.0,
         min_pixels: float = 3.0) -> None:
    """A circle of world `radius` (at least `min_pixels` drawn) around a world point."""
    c = p.pixels(np.asarray(centre_uv))[0]
    r = max(radius * p.scale(), min_pixels)
    angle = np.linspace(0.0, 2.0 * np.pi, max(int(2 * np.pi * r / 2), 16) + 1)
    polyline(canvas, p, c + r * np.stack([-np.sin(angle), np.cos(angle)], axis=1), colour, width)


def box(canvas: np.ndarray, p: Panel, low_uv, high_uv, colour) -> None:
    """Fill the world rectangle [low_uv, high_uv], at least one pixel thick, cut to the panel."""
    (r1, c0), (r0, c1) = p.pixels(np.asarray(low_uv))[0], p.pixels(np.asarray(high_uv))[0]
    r0, r1 = int(np.floor(r0 + 0.5)), int(np.ceil(r1 + 0.5))
    c0, c1 = int(np.floor(c0 + 0.5)), int(np.ceil(c1 + 0.5))
    r0, c0 = max(r0, p.top), max(c0, p.left)
    r1, c1 = min(max(r1, r0 + 1), p.top + p.height), min(max(c1, c0 + 1), p.left + p.width)
    if r1 > r0 and c1 > c0:
        canvas[r0:r1, c0:c1] = colour


def faded(colour: Colour, k: int, lightest: float = 0.15) -> np.ndarray:
    """k colours from nearly the background (oldest) to `colour` (newest), (k, 3)."""
    alpha = np.linspace(lightest, 1.0, max(k, 1))[:, None]
    return (1.0 - alpha) * np.asarray(BACKGROUND, np.float64) + alpha * np.asarray(colour, np.float64)


def trail_line(canvas, p: Panel, uv: np.ndarray, colour: Colour = TRAIL, width: float = 2.0) -> None:
    """A path of world points (oldest first), fading with age."""
    if len(uv) >= 2:
        polyline(canvas, p, p.pixels(uv), faded(colour, len(uv) - 1), width)


def marker(canvas, p: Panel, uv, colour: Colour = STATE, radius: float = 4.0) -> None:
    """A disc at a world point, kept inside the panel when the point is outside it."""
    dots(canvas, p, p.clamp(p.pixels(np.asarray(uv)), radius), colour, radius)


def _time_bar(canvas: np.ndarray, state, params) -> None:
    time = getattr(state, "time", None)
    steps = getattr(params, "max_steps_in_episode", None)
    canvas[-TIME_BAR:] = GRID
    if time is None or steps is None or not float(steps) > 0:
        return
    fraction = float(np.clip(np.nan_to_num(float(np.asarray(time)) / float(steps)), 0.0, 1.0))
    canvas[-TIME_BAR:, : int(round(fraction * canvas.shape[1]))] = INK


# ---- the frames -------------------------------------------------------------------------------------
def _states(state, trail) -> np.ndarray:
    """The trail and the current physical state, (T + 1, dim x) float64, oldest first."""
    x = np.asarray(state.x, np.float64).reshape(-1)
    if trail is None or len(trail) == 0:
        return x[None]
    trail = np.asarray(trail, np.float64)
    if trail.ndim != 2 or trail.shape[1] != x.shape[0]:
        raise ValueError(
            f"trail must have shape (T, {x.shape[0]}) (past states x, oldest first), got {trail.shape}"
        )
    return np.concatenate([trail, x[None]])


def _square(canvas) -> tuple[int, int]:
    return canvas.shape[0] - TIME_BAR, canvas.shape[1]


def _draw_lorenz(canvas, env: Lorenz, state, params, trail) -> None:
    xs = _states(state, trail)[:, [0, 2]]
    # the attractor spans |x| < 2.3 sqrt(beta (rho - 1)) and 0 < z < 1.8 (rho - 1) (rho = 28: 20, 49)
    rho_1 = max(float(params.rho) - 1.0, 1.0)
    half = max(2.8 * math.sqrt(float(params.beta) * rho_1), 5.0)
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (-half, half), (-0.1 * 2 * rho_1, 2 * rho_1))
    polyline(canvas, p, p.pixels(np.array([[0.0, p.v0], [0.0, p.v1]])), GRID)
    polyline(canvas, p, p.pixels(np.array([[p.u0, 0.0], [p.u1, 0.0]])), GRID)
    eq = np.asarray(_jitted(lorenz_equilibria)(params), np.float64)[:, [0, 2]]
    for i in (1, 2):
        ring(canvas, p, eq[i], 0.0, FAINT, 1.0, min_pixels=5.0)
    ring(canvas, p, eq[int(params.target_equilibrium)], 0.0, TARGET, 2.0, min_pixels=7.0)
    trail_line(canvas, p, xs)
    marker(canvas, p, xs[-1])


U_LIMIT = 4.0  # the u(x) panel of KS spans [-U_LIMIT, U_LIMIT] (|u| < 3 on the attractor at L = 22)
U_COLOUR_SATURATION = 3.0


def _diverging(values: np.ndarray) -> np.ndarray:
    """Blue (-1) - white (0) - red (+1) for values in [-1, 1], shape (..., 3) float."""
    v = np.clip(np.nan_to_num(values), -1.0, 1.0)[..., None]
    white = np.asarray(BACKGROUND, np.float64)
    towards = np.where(v < 0, np.asarray(NEGATIVE, np.float64), np.asarray(STATE, np.float64))
    return white + np.abs(v) * (towards - white)


def _draw_ks(canvas, env: KuramotoSivashinsky, state, params, trail) -> None:
    us = _states(state, trail)
    n, length = us.shape[1], float(params.length)
    h, w = _square(canvas)
    top_h = int(0.42 * h)
    p = panel(0, 0, top_h, w, (0.0, length), (-U_LIMIT, U_LIMIT), equal=False, margin=4)
    xs = length * np.arange(n + 1) / n  # the grid, and x = L to close the periodic curve

    def curve(u):
        u = np.clip(np.nan_to_num(np.asarray(u, np.float64)), -U_LIMIT, U_LIMIT)
        return p.pixels(np.stack([xs, np.append(u, u[0])], axis=1))

    polyline(canvas, p, p.pixels(np.array([[0.0, 0.0], [length, 0.0]])), GRID)
    if params.u_target is not None:
        polyline(canvas, p, curve(params.u_target), TARGET, 2.0)
    centres = length * np.arange(env.num_actuators) / env.num_actuators
    ticks = np.stack([centres, np.full_like(centres, -U_LIMIT)], axis=1)
    dots(canvas, p, p.clamp(p.pixels(ticks), 2.0), FAINT, 2.0)
    polyline(canvas, p, curve(us[-1]), INK, 2.0)
    # the space-time strip: one row per step, newest at the top, nearest-neighbour in x
    strip_top = top_h + 2
    strip_h = h - strip_top
    rows = min(us.shape[0], strip_h)
    history = us[::-1][:rows]  # newest first
    cols = np.minimum((np.arange(w) * n) // w, n - 1)
    canvas[strip_top - 2 : strip_top] = GRID
    canvas[strip_top : strip_top + rows] = np.rint(
        _diverging(history[:, cols] / U_COLOUR_SATURATION)
    ).astype(np.uint8)


def _point_task(canvas, p: Panel, xs: np.ndarray, radius: float = 4.0) -> None:
    trail_line(canvas, p, xs[:, :2])
    marker(canvas, p, xs[-1, :2], STATE, radius)


def _draw_obstacle2d(canvas, env: Obstacle2D, state, params, trail) -> None:
    xs = _states(state, trail)
    start = np.array([float(params.start_x), float(params.start_y)])
    goal = np.array([float(params.goal_x), float(params.goal_y)])
    low = np.array([float(params.wall_x), float(params.wall_y_low)])
    high = np.array([float(params.wall_x) + float(params.wall_width), float(params.wall_y_high)])
    us = np.array([start[0], goal[0], low[0], high[0]])
    vs = np.array([start[1], goal[1], low[1], high[1]])
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (us.min() - 1.5, us.max() + 1.5), (vs.min() - 1.0, vs.max() + 1.0))
    box(canvas, p, low, high, WALL)
    ring(canvas, p, start, 0.0, FAINT, 1.0, min_pixels=4.0)
    ring(canvas, p, goal, float(params.goal_radius), TARGET, 2.0, min_pixels=5.0)
    dots(canvas, p, p.pixels(goal), TARGET, 2.0)
    _point_task(canvas, p, xs)


def _draw_room(canvas, env: Room, state, params, trail) -> None:
    xs = _states(state, trail)
    size = float(params.size)
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (0.0, size), (0.0, size), margin=4)
    box(canvas, p, (0.0, 0.0), (size, size), WALL)
    box(canvas, p, (1.0, 1.0), (size - 1.0, size - 1.0), BACKGROUND)
    for i in range(2, int(size) - 1):  # the cells of the MiniGrid room
        polyline(canvas, p, p.pixels(np.array([[i, 1.0], [i, size - 1.0]])), GRID)
        polyline(canvas, p, p.pixels(np.array([[1.0, i], [size - 1.0, i]])), GRID)
    goal = np.array([float(params.goal_x), float(params.goal_y)])  # the goal cell's lower-left corner
    box(canvas, p, goal, goal + 1.0, TARGET)
    for x0, y0, x1, y1 in np.asarray(params.obstacles, np.float64):
        if x1 >= x0:  # rows with x1 < x0 are unused
            box(canvas, p, (x0, y0), (x1, y1), WALL)
    _point_task(canvas, p, xs, radius=0.3 * p.scale())


def _draw_minigrid_room(canvas, env: MiniGridRoom, state, params, trail) -> None:
    xs = _states(state, trail)
    size = float(env.size)
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (0.0, size), (0.0, size), margin=4)
    up = np.array([1.0, -1.0])  # MiniGrid's y grows downwards: cell (x, y) is drawn at v = size - y

    def cell(x, y, colour):
        box(canvas, p, (x, size - y - 1.0), (x + 1.0, size - y), colour)

    box(canvas, p, (0.0, 0.0), (size, size), BACKGROUND)
    for x, y in np.argwhere(np.asarray(params.walls)):
        cell(float(x), float(y), WALL)
    cell(float(params.goal_x), float(params.goal_y), TARGET)
    for i in range(1, int(size)):
        polyline(canvas, p, p.pixels(np.array([[i, 0.0], [i, size]])), GRID)
        polyline(canvas, p, p.pixels(np.array([[0.0, i], [size, i]])), GRID)
    centres = (xs[:, :2] + 0.5) * up + np.array([0.0, size])
    trail_line(canvas, p, centres)
    marker(canvas, p, centres[-1], STATE, 0.3 * p.scale())
    heading = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])[int(xs[-1, 2]) % 4] * up
    dots(canvas, p, p.pixels(centres[-1] + 0.3 * heading), BACKGROUND, 0.1 * p.scale())  # the side it faces


LINK_LENGTH_2 = 1.0  # the acrobot's l2 does not enter its dynamics (acrobot.py): drawn at 1


def _draw_acrobot(canvas, env: Acrobot, state, params, trail) -> None:
    xs = _states(state, trail)
    l1 = float(params.link_length_1)
    reach = 1.15 * (l1 + LINK_LENGTH_2)
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (-reach, reach), (-reach, reach))
    theta1, theta12 = xs[:, 0], xs[:, 0] + xs[:, 1]
    elbow = l1 * np.stack([np.cos(theta1), np.sin(theta1)], axis=1)
    tip = elbow + LINK_LENGTH_2 * np.stack([np.cos(theta12), np.sin(theta12)], axis=1)
    polyline(canvas, p, p.pixels(np.array([[-reach, 0.0], [reach, 0.0]])), GRID)
    polyline(canvas, p, p.pixels(np.array([[0.0, 0.0], [0.0, l1 + LINK_LENGTH_2]])), TARGET, 2.0)
    trail_line(canvas, p, tip[-50:])
    polyline(canvas, p, p.pixels(np.stack([np.zeros(2), elbow[-1], tip[-1]])), INK, 6.0)
    dots(canvas, p, p.pixels(np.stack([np.zeros(2), elbow[-1]])), WALL, 4.0)
    dots(canvas, p, p.pixels(tip[-1]), STATE, 4.0)


def _car(canvas, p: Panel, xs: np.ndarray, rear: float, front: float, target_uv, radius: float,
         path_uv: np.ndarray | None = None) -> None:
    """A car (position xs[:, :2], yaw xs[:, 2]) on a course circle, its trail and its target."""
    ring(canvas, p, (0.0, 0.0), radius, FAINT, 1.0)
    if path_uv is not None:
        polyline(canvas, p, p.pixels(path_uv), GRID, 3.0)
    dots(canvas, p, p.clamp(p.pixels(np.asarray(target_uv)), 5.0), TARGET, 5.0)
    trail_line(canvas, p, xs[:, :2])
    pos, psi = xs[-1, :2], xs[-1, 2]
    heading = np.array([np.cos(psi), np.sin(psi)])
    ends = p.pixels(np.stack([pos - rear * heading, pos + front * heading]))
    shift = p.clamp(p.pixels(pos), 4.0)[0] - p.pixels(pos)[0]  # keep an out-of-view car at the edge
    polyline(canvas, p, ends + shift, STATE, 6.0)
    dots(canvas, p, ends[1:] + shift, INK, 2.0)


def _draw_vehicle(canvas, env: Vehicle, state, params, trail) -> None:
    xs = _states(state, trail)
    radius = float(params.circle_radius)
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (-1.5 * radius, 1.5 * radius), (-1.5 * radius, 1.5 * radius))
    target = np.asarray(_jitted(target_position)(xs[-1, 6], params), np.float64)
    _car(canvas, p, xs, float(params.rear_axle_distance), float(params.front_axle_distance), target, radius)


def _draw_vehicle_authors(canvas, env: AuthorsVehicle, state, params, trail) -> None:
    xs = _states(state, trail)
    radius = float(params.circle_radius)
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (-1.5 * radius, 1.5 * radius), (-1.5 * radius, 1.5 * radius))
    path = np.asarray(params.target_path, np.float64)
    target = path[min(int(state.time), len(path) - 1)]  # AuthorsVehicle.target: it stops at the last
    half = 0.5 * float(params.wheelbase)
    _car(canvas, p, xs, half, half, target, radius, path)


def _euler_zyx(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """R = Rz(yaw) Ry(pitch) Rx(roll), body to world (the quadrotor's angles)."""
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def _flyer(canvas, positions: np.ndarray, rotation: np.ndarray, rotors: np.ndarray, arm: float,
           reference_now: np.ndarray, path: np.ndarray, centre: np.ndarray, half: float,
           ground: float | None = None) -> None:
    """Top view (x-y, left) and side view (x-z, right) of a vehicle with rotors at body points
    `arm * rotors` (4, 3), rotor 0 red (the front, or front-left); views of half-width `half`
    around `centre` (3,)."""
    h, w = _square(canvas)
    for view, (a, b) in enumerate([(0, 1), (0, 2)]):
        p = panel(0, view * (w // 2), h, w // 2, (centre[a] - half, centre[a] + half),
                  (centre[b] - half, centre[b] + half))
        if view:
            canvas[:h, p.left] = GRID  # the views' border
        if ground is not None and b == 2:
            box(canvas, p, (p.u0, p.v0), (p.u1, ground), (236, 226, 214))
            polyline(canvas, p, p.pixels(np.array([[p.u0, ground], [p.u1, ground]])), GROUND, 2.0)
        polyline(canvas, p, p.pixels(path[:, [a, b]]), FAINT, 2.0)
        dots(canvas, p, p.clamp(p.pixels(reference_now[[a, b]]), 5.0), TARGET, 5.0)
        trail_line(canvas, p, positions[:, [a, b]])
        drawn_arm = max(arm, 0.03 * 2 * half)
        ends = positions[-1] + drawn_arm * rotors @ rotation.T  # (4, 3) world
        centre_px = p.pixels(positions[-1, [a, b]])[0]
        shift = p.clamp(centre_px[None], drawn_arm * p.scale() + 2.0)[0] - centre_px
        ends_px = p.pixels(ends[:, [a, b]]) + shift
        polyline(canvas, p, ends_px[[0, 2]], INK, 3.0)
        polyline(canvas, p, ends_px[[1, 3]], INK, 3.0)
        dots(canvas, p, ends_px[1:], WALL, 3.0)
        dots(canvas, p, ends_px[:1], STATE, 3.0)
        dots(canvas, p, (centre_px + shift)[None], STATE, 2.0)


# the quadrotor's rotors: 1, 3 on the body y axis (roll torque w1^2 - w3^2), 2, 4 on the x axis;
# drawn from the front (+x) round
_PLUS_ROTORS = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def _draw_quadrotor(canvas, env: Quadrotor, state, params, trail) -> None:
    xs = _states(state, trail)
    end = float(params.path_speed) * float(params.dt) * int(params.max_steps_in_episode)
    path = np.array([[0.0, 0.0, 0.0], [end, 0.0, 0.0]])
    # Quadrotor.reference: x = path_speed t along the x axis, lagged by one step
    lagged = max(int(state.time) - 1, 0) * float(params.dt)
    reference_now = np.array([float(params.path_speed) * lagged, 0.0, 0.0])
    centre = np.array([0.5 * end, 0.0, 0.0])
    half = 0.5 * end + 1.0
    rotation = _euler_zyx(*xs[-1, 6:9])
    _flyer(canvas, xs[:, 0:3], rotation, _PLUS_ROTORS, float(params.arm), reference_now, path, centre, half)


def _draw_crazyflie(canvas, env: Crazyflie, state, params, trail) -> None:
    xs = _states(state, trail)
    x = xs[-1]
    reference_now = np.asarray(_jitted(crazyflie_reference)(x[TIME], params)[0], np.float64)
    angle = np.linspace(0.0, 2.0 * np.pi, 97)
    radius, height = float(params.path_radius), float(params.path_height)
    path = np.stack([radius * np.cos(angle), radius * np.sin(angle), np.full_like(angle, height)], axis=1)
    # X configuration: rotor i at (sx_i, sy_i) / sqrt(2) in the body frame; rotor 0 is front-left
    rotors = np.stack([ROTOR_X_SIGNS, ROTOR_Y_SIGNS, np.zeros(4)], axis=1) / math.sqrt(2.0)
    # the views show the reference circle and the 2 m within which the flight continues, in part
    half = radius + 0.5 * float(params.max_distance)
    q = x[QUATERNION]
    norm = np.linalg.norm(q)
    q = q / norm if np.isfinite(norm) and norm > 0 else np.array([1.0, 0.0, 0.0, 0.0])
    rotation = np.asarray(_jitted(rotation_matrix)(q), np.float64)
    _flyer(canvas, xs[:, POSITION], rotation, rotors, float(params.arm), reference_now, path,
           np.array([0.0, 0.0, height]), half, ground=0.0)


def _draw_observation(canvas, env, state, params, trail) -> None:
    observe = getattr(env, "observe", None)
    if observe is None:
        raise TypeError(f"no frame for {type(env).__name__}: no drawing of its own and no observe(state, params)")
    _states(state, trail)  # checks the trail; bars show the observation now only
    obs = np.nan_to_num(np.asarray(observe(state, params), np.float64).reshape(-1))
    h, w = _square(canvas)
    p = panel(0, 0, h, w, (0.0, float(max(obs.size, 1))), (-1.0, 1.0), equal=False)
    polyline(canvas, p, p.pixels(np.array([[p.u0, 0.0], [p.u1, 0.0]])), FAINT)
    heights = np.tanh(obs)
    for i, v in enumerate(heights):
        low, high = (i + 0.15, min(v, 0.0)), (i + 0.85, max(v, 0.0))
        if v != 0.0:
            box(canvas, p, low, high, STATE if v > 0 else NEGATIVE)


Drawer = Callable[..., None]
# (draw, frame width in units of SIZE, whether the task's dt is in seconds: real-time fps)
_DRAWERS: dict[type, tuple[Drawer, int, bool]] = {
    Lorenz: (_draw_lorenz, 1, False),
    KuramotoSivashinsky: (_draw_ks, 1, False),
    Obstacle2D: (_draw_obstacle2d, 1, False),
    Room: (_draw_room, 1, False),
    MiniGridRoom: (_draw_minigrid_room, 1, False),
    Acrobot: (_draw_acrobot, 1, True),
    Vehicle: (_draw_vehicle, 1, True),
    AuthorsVehicle: (_draw_vehicle_authors, 1, True),
    Quadrotor: (_draw_quadrotor, 2, True),
    Crazyflie: (_draw_crazyflie, 2, True),
}


def _drawer(env) -> tuple[Drawer, int, bool]:
    for cls in type(env).__mro__:  # subclasses (the realistic variants) draw as their base
        if cls in _DRAWERS:
            return _DRAWERS[cls]
    return _draw_observation, 1, False


def frame_shape(env) -> tuple[int, int, int]:
    """(H, W, 3) of every frame of `env`."""
    return SIZE, SIZE * _drawer(env)[1], 3


def render_fps(env, params) -> float:
    """Frames per second of a video: the control rate 1/dt where dt is in seconds (acrobot,
    vehicles, quadrotors, Crazyflies: real time), else DEFAULT_FPS."""
    _, _, real_time = _drawer(env)
    dt = getattr(params, "dt", None)
    if real_time and dt is not None and float(dt) > 0:
        return 1.0 / float(dt)
    return DEFAULT_FPS


def render_frame(env, state, params, trail: np.ndarray | None = None) -> np.ndarray:
    """The RGB frame (H, W, 3) uint8 of one environment's `state` (module docstring).

    Args:
        env, params: the functional environment and its params (the frame reads targets,
            walls, equilibria from them).
        state: the state of one environment (no batch axis).
        trail: the physical states `x` before `state` in the episode, oldest first, (T, dim x);
            None: no trail.
    """
    draw, _, _ = _drawer(env)
    canvas = np.empty(frame_shape(env), np.uint8)
    canvas[...] = BACKGROUND
    draw(canvas, env, state, params, trail)
    _time_bar(canvas, state, params)
    return canvas
