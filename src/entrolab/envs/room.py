"""Room: a point in a walled room that must reach a goal cell, with layouts as params.

The continuous twin of the MiniGrid room of Ashlag et al.'s state-entropy experiments (arXiv
2506.07085; their code, github JonathanAshlag/State_entropy_robust_rl, read for this port; facts
in ../shared/notes/research.md). Their grid is 10 x 10 cells with the outer ring as walls, the agent
starts in cell (1, 1) and the goal is cell (8, 8); here cell (i, j) is the unit square
[i, i + 1] x [j, j + 1], so the free room is [1, 9]^2, the start is the centre (1.5, 1.5) of cell
(1, 1) and the goal is the square of cell (8, 8). Their test perturbations, in the same cell
coordinates (`layout`):

- ``wall``: cells x = 4, y = 1..5 (the rectangle [4, 5] x [1, 6]);
- ``elbow``: cells (5..7, y), (5, y + 1), (5, y + 2) with y uniform in {1, ..., 4};
- ``blocks``: 7 distinct random cells in {2..8}^2 other than (2, 2) and (8, 8);
- ``moved_goal``: the goal moved to a random cell in {2..7}^2.

Every layout is a value of the params (`obstacles`, an (K, 4) array of rectangles
[x0, y0, x1, y1], rows with x1 < x0 unused; `goal_x`, `goal_y`), so nominal and perturbed rooms are
one `vmap` over params, and a random layout is a function of a key.

Dynamics: p' = p + action_scale * a, a in [-1, 1]^2. A move whose straight segment would leave the
room or meet an obstacle (closed rectangles, `obstacle2d.segment_hits_rectangle`) is blocked: the
point stays where it was (MiniGrid's walls block a forward step). A move whose segment meets the
goal square ends the episode with reward 1 - 0.9 t / T (t the step count after the move, T =
`max_steps_in_episode` = 200): MiniGrid's reward. Every other step pays 0.

Observation (13 numbers), the analogue of MiniGrid's egocentric 7 x 7 view (3 cells ahead):
the position / size (2), the distance to the nearest wall or obstacle along 8 rays (the axes and the
diagonals) capped at `view` = 3 and divided by it (8), and the goal: 1 if it is within `view`
(Chebyshev distance of the point to the goal square's centre) and its offset / view, else zeros (3).

Departures from their MiniGrid env, all because this one is continuous: a position and a velocity
action instead of a cell, a direction and {left, right, forward}; the view is range-limited rays
instead of an occupancy grid; a blocked move stays instead of turning. `entrolab.envs.room` is
the continuous "obstacles and shifted targets for a point mass" of issue 13; a grid twin with exact
state-entropy checks is not built yet.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from entrolab.envs.core import EnvParams, EnvState, NaturalEnds
from entrolab.envs.obstacle2d import point_start, segment_hits_rectangle
from entrolab.envs.spaces import Box

LAYOUTS = ("nominal", "wall", "elbow", "blocks", "moved_goal")
_RAYS = np.array([[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]], np.float32)
_RAYS = _RAYS / np.linalg.norm(_RAYS, axis=1, keepdims=True)
_UNUSED = (0.0, 0.0, -1.0, -1.0)  # x1 < x0: an empty rectangle


def _no_obstacles(k: int = 8) -> jax.Array:
    return jnp.tile(jnp.asarray(_UNUSED, jnp.float32), (k, 1))


@struct.dataclass
class RoomParams(EnvParams):
    """Every quantity of the room (all vmappable; the number of obstacle rows is the env's static
    `max_obstacles`).

    Attributes:
        size: the room with its outer walls spans [0, size]^2; the free room is [1, size - 1]^2.
        start_x, start_y: the start (centre of cell (1, 1)); init_std: Gaussian jitter of it.
        goal_x, goal_y: the goal cell's lower-left corner (the goal is [goal_x, goal_x + 1] x ...).
        action_scale: the largest move per axis per step.
        view: range of the rays and of the goal sensor.
        obstacles: (K, 4) rectangles [x0, y0, x1, y1]; rows with x1 < x0 are unused.
    """

    max_steps_in_episode: int = 200
    size: float = 10.0
    start_x: float = 1.5
    start_y: float = 1.5
    init_std: float = 0.0
    goal_x: float = 8.0
    goal_y: float = 8.0
    action_scale: float = 1.0
    view: float = 3.0
    obstacles: jax.Array = struct.field(default_factory=_no_obstacles)
    cost_cap: float = 10.0


def ray_distance(p: jax.Array, u: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Distance along the unit ray p + t u (t >= 0) to the closed box [low, high]; inf if missed
    (0 if p is inside). Slab method; an axis along which the ray does not move keeps every t if p
    is between the bounds there, else none."""
    still = u == 0
    u_safe = jnp.where(still, 1.0, u)
    t1, t2 = (low - p) / u_safe, (high - p) / u_safe
    inside = (p >= low) & (p <= high)
    t_near = jnp.where(still, jnp.where(inside, -jnp.inf, jnp.inf), jnp.minimum(t1, t2)).max()
    t_far = jnp.where(still, jnp.where(inside, jnp.inf, -jnp.inf), jnp.maximum(t1, t2)).min()
    hit = (t_near <= t_far) & (t_far >= 0)
    return jnp.where(hit, jnp.maximum(t_near, 0.0), jnp.inf)


class Room(NaturalEnds[EnvState, RoomParams]):
    """The room (module docstring). State `x` = position (2,). Static option: `max_obstacles`."""

    name = "room"

    def __init__(self, max_obstacles: int = 8):
        if int(max_obstacles) < 1:
            raise ValueError(f"max_obstacles must be >= 1, got {max_obstacles}")
        self.max_obstacles = int(max_obstacles)

    @property
    def default_params(self) -> RoomParams:
        return RoomParams(obstacles=_no_obstacles(self.max_obstacles))

    # ---- geometry -------------------------------------------------------------------------------
    def goal_box(self, params: RoomParams) -> tuple[jax.Array, jax.Array]:
        low = jnp.stack([jnp.asarray(params.goal_x), jnp.asarray(params.goal_y)]).astype(jnp.float32)
        return low, low + 1.0

    def blocked(self, p0: jax.Array, p1: jax.Array, params: RoomParams) -> jax.Array:
        """Whether the move p0 -> p1 leaves the free room or meets an obstacle."""
        lo, hi = 1.0, params.size - 1.0
        outside = jnp.any(p1 < lo) | jnp.any(p1 > hi)
        obs = jnp.asarray(params.obstacles, p0.dtype)
        used = obs[:, 2] >= obs[:, 0]
        hits = jax.vmap(lambda r: segment_hits_rectangle(p0, p1, r[:2], r[2:]))(obs)
        return outside | jnp.any(used & hits)

    def rays(self, p: jax.Array, params: RoomParams) -> jax.Array:
        """Distance to the nearest wall or obstacle along each of the 8 rays, capped at `view`."""
        obs = jnp.asarray(params.obstacles, p.dtype)
        used = obs[:, 2] >= obs[:, 0]
        lo, hi = jnp.full((2,), 1.0, p.dtype), jnp.full((2,), params.size - 1.0, p.dtype)

        def one(u):
            # the room's walls: where the ray leaves the free room (p is inside it)
            t_wall = jnp.min(jnp.where(u > 0, (hi - p) / jnp.where(u > 0, u, 1.0),
                                       jnp.where(u < 0, (lo - p) / jnp.where(u < 0, u, 1.0), jnp.inf)))
            t_obs = jax.vmap(lambda r: ray_distance(p, u, r[:2], r[2:]))(obs)
            return jnp.minimum(t_wall, jnp.min(jnp.where(used, t_obs, jnp.inf)))

        return jnp.minimum(jax.vmap(one)(jnp.asarray(_RAYS, p.dtype)), params.view)

    # ---- the protocol ---------------------------------------------------------------------------
    def reset_env(self, key, params):
        state = point_start(key, params)
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        p0 = state.x
        p1 = p0 + params.action_scale * action.astype(p0.dtype)
        blocked = self.blocked(p0, p1, params)
        p = jnp.where(blocked, p0, p1)
        g_lo, g_hi = self.goal_box(params)
        goal = segment_hits_rectangle(p0, p, g_lo.astype(p.dtype), g_hi.astype(p.dtype))
        time = state.time + 1
        reward = jnp.where(goal, 1.0 - 0.9 * time / params.max_steps_in_episode, 0.0)
        info = {"terminal": goal, "goal": goal, "blocked": blocked}
        return state.replace(x=p, time=time), (-reward).astype(p.dtype), info

    def observe(self, state, params):
        p = state.x
        g_lo, _ = self.goal_box(params)
        offset = (g_lo.astype(p.dtype) + 0.5) - p
        seen = jnp.max(jnp.abs(offset)) <= params.view
        goal = jnp.where(seen, jnp.concatenate([jnp.ones((1,), p.dtype), offset / params.view]), 0.0)
        return jnp.concatenate([p / params.size, self.rays(p, params) / params.view, goal]).astype(p.dtype)

    def observation_bound(self, params: RoomParams) -> float:
        return 1.0

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (2,))

    def observation_space(self, params=None):
        return Box(-1.0, 1.0, (13,))


# ---- layouts (Ashlag et al.'s test perturbations) -----------------------------------------------
def _cells(cells: jax.Array, k: int) -> jax.Array:
    """Unit-cell rectangles of integer cells (n, 2), padded with unused rows to (k, 4)."""
    cells = jnp.asarray(cells, jnp.float32)
    rects = jnp.concatenate([cells, cells + 1.0], axis=1)
    return jnp.concatenate([rects, _no_obstacles(k - rects.shape[0])], axis=0) if k > rects.shape[0] else rects


def layout(name: str, params: RoomParams, key: jax.Array | None = None) -> RoomParams:
    """`params` with the obstacles and goal of one of `LAYOUTS` (the random ones draw from `key`;
    jit/vmap-able over keys). Needs `params.obstacles` to have at least 7 rows for "blocks"."""
    k = params.obstacles.shape[0]
    need = {"nominal": 0, "wall": 1, "elbow": 2, "blocks": 7, "moved_goal": 0}
    if name not in need:
        raise ValueError(f"unknown layout {name!r}; known: {LAYOUTS}")
    if need[name] > k:
        raise ValueError(f"layout {name!r} needs {need[name]} obstacle rows, the params have {k} (max_obstacles)")
    if name in ("elbow", "blocks", "moved_goal") and key is None:
        raise ValueError(f"layout {name!r} is random: pass a key")
    base = params.replace(obstacles=_no_obstacles(k), goal_x=8.0, goal_y=8.0)
    if name == "nominal":
        return base
    if name == "wall":
        rect = jnp.asarray([[4.0, 1.0, 5.0, 6.0]], jnp.float32)
        return base.replace(obstacles=jnp.concatenate([rect, _no_obstacles(k - 1)]) if k > 1 else rect)
    if name == "elbow":
        y = jax.random.randint(key, (), 1, 5).astype(jnp.float32)
        rects = jnp.stack([jnp.stack([5.0, y, 8.0, y + 1.0]), jnp.stack([5.0, y + 1.0, 6.0, y + 3.0])])
        return base.replace(obstacles=jnp.concatenate([rects, _no_obstacles(k - 2)]) if k > 2 else rects)
    if name == "blocks":
        grid = np.array([(i, j) for i in range(2, 9) for j in range(2, 9) if (i, j) not in ((2, 2), (8, 8))])
        pick = jax.random.choice(key, grid.shape[0], (7,), replace=False)
        return base.replace(obstacles=_cells(jnp.asarray(grid)[pick], k))
    cell = jax.random.randint(key, (2,), 2, 8).astype(jnp.float32)  # moved_goal
    return base.replace(goal_x=cell[0], goal_y=cell[1])
