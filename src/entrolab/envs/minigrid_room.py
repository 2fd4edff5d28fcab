"""MiniGrid room: Ashlag et al.'s 10 x 10 MiniGrid room as a functional env, layouts as params.

The grid of the state-entropy experiments (arXiv 2506.07085; their code, github
JonathanAshlag/State_entropy_robust_rl, read for this port; MiniGrid's `EmptyEnv` and `MiniGridEnv`,
minigrid 3.2.0, are the reference for the semantics and are checked against in
tests/test_minigrid_room.py, step by step and observation by observation):

- a `size` x `size` grid (10) whose outer ring is wall; the agent starts in cell (1, 1) facing east
  (direction 0; 1 south, 2 west, 3 north: MiniGrid's, with y growing downwards); the goal is cell
  (8, 8);
- three actions: 0 turn left, 1 turn right, 2 forward. Forward moves into the cell ahead unless it
  is a wall; moving onto the goal ends the episode (terminated) with reward
  1 - 0.9 t / T, t the step count including this step and T = `max_steps_in_episode` = 200; every
  other step pays 0; at t = T the episode is truncated;
- the observation is MiniGrid's egocentric 7 x 7 x 3 view (object, colour, state codes: unseen 0,
  empty 1, wall 2 grey 5, goal 8 green 1), the agent in the middle of the bottom row facing up,
  cells outside the grid seen as wall, flattened in MiniGrid's [i, j, channel] order to 147 floats.
  The authors' room (like MiniGrid's `EmptyEnv`) sees through walls; `see_through_walls=False`
  hides the cells behind walls by MiniGrid's `process_vis` occlusion rule (`visibility`).

Layouts (`layout`) are values of the params: `walls` is a (size, size) bool array indexed [x, y],
`goal_x`, `goal_y` a cell, so that nominal and perturbed rooms are one `vmap` over params. The test
perturbations are the authors' (`perturbation_cells`, shared with the continuous `entrolab.envs.room`,
which therefore sees the same wall / elbow / blocks / goal for the same key).

The state-entropy features of a state (`state_features`) are the authors': (x, y, one-hot
direction), the agent's true cell, not the observation (the observation is partial).

`tabular_twin(env, params)` is the same room as an `entrolab.tabular.FiniteMDP` over (x, y,
direction), with the observation of every state, so that a policy's exact occupancy d^pi, H(d^pi)
and robust return can be computed and compared with rollouts of this env.

Why not xminigrid or navix: navix needs Python >= 3.12; xminigrid (0.9.3) encodes its view as
(tile, colour) pairs, not MiniGrid's three channels, and generates its grids inside its own reset
from rulesets, so matching MiniGrid's observation and making the layout a vmappable params field
would mean overriding most of it. This file is the room, its view and its occlusion rule in
~100 lines of JAX, tested against MiniGrid itself.

Departures from the authors' setup: the policy sees the flattened view (an MLP, where their torch-ac
model applies a small CNN to the image); MiniGrid's other actions (pickup, drop, toggle, done) do
nothing in an empty room and are not offered (their env offers 3 actions as well); the episode is
not re-drawn (their room is fixed too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from entrolab.envs.core import EnvParams, EnvState, NaturalEnds
from entrolab.envs.spaces import Box, Discrete

LAYOUTS = ("nominal", "wall", "elbow", "blocks", "moved_goal")
VIEW = 7  # MiniGrid's agent_view_size
DIRECTIONS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.int32)  # east, south, west, north
LEFT, RIGHT, FORWARD = 0, 1, 2
# MiniGrid's codes (object, colour, state)
UNSEEN, EMPTY, WALL, GOAL = (0, 0, 0), (1, 0, 0), (2, 5, 0), (8, 1, 0)


def _walls(size: int) -> jax.Array:
    ring = np.zeros((size, size), bool)
    ring[0, :] = ring[-1, :] = ring[:, 0] = ring[:, -1] = True
    return jnp.asarray(ring)


@struct.dataclass
class MiniGridParams(EnvParams):
    """The room (the grid's side is the env's static `size`).

    Attributes:
        walls: (size, size) bool, indexed [x, y]; the outer ring is always wall.
        goal_x, goal_y: the goal cell.
        start_x, start_y, start_dir: the agent's start (cell (1, 1), facing east).
    """

    max_steps_in_episode: int = 200
    walls: jax.Array = struct.field(default_factory=lambda: _walls(10))
    goal_x: int = 8
    goal_y: int = 8
    start_x: int = 1
    start_y: int = 1
    start_dir: int = 0
    cost_cap: float = 10.0


def visibility(transparent: jax.Array) -> jax.Array:
    """MiniGrid's `Grid.process_vis` on a (V, V) view indexed [i, j] (agent at (V // 2, V - 1), facing
    -j): which cells the agent sees. Rows are swept from the agent's outwards; within a row, a seen
    transparent cell reveals its right neighbour (left-to-right pass) then its left neighbour
    (right-to-left pass), and in both passes the cells diagonally and straight ahead of it in the next
    row."""
    v = transparent.shape[0]

    def sweep(entering, j):
        t = transparent[:, j]

        def step(carry, cell):
            seen, clear = cell
            seen = seen | carry
            return seen & clear, seen

        _, lr = jax.lax.scan(step, False, (entering, t))
        _, rl = jax.lax.scan(step, False, (lr[::-1], t[::-1]))
        rl = rl[::-1]
        from_lr = (lr & t).at[v - 1].set(False)  # the left-to-right pass stops before the last cell
        from_rl = (rl & t).at[0].set(False)
        ahead = from_lr | from_rl | jnp.roll(from_lr, 1).at[0].set(False) | jnp.roll(from_rl, -1).at[v - 1].set(False)
        return ahead, rl

    start = jnp.zeros((v,), bool).at[v // 2].set(True)
    _, rows = jax.lax.scan(sweep, start, jnp.arange(v - 1, -1, -1))
    return rows[::-1].T  # rows[k] is row j = v - 1 - k, as [i]


class MiniGridRoom(NaturalEnds[EnvState, MiniGridParams]):
    """The room (module docstring). State `x` = (x, y, direction) as floats (the base class's
    divergence guard reads floats); static options `size` and `see_through_walls`."""

    name = "minigrid_room"

    def __init__(self, size: int = 10, see_through_walls: bool = True):
        if int(size) < 5:
            raise ValueError(f"size must be >= 5, got {size}")
        self.size = int(size)
        self.see_through_walls = bool(see_through_walls)

    @property
    def default_params(self) -> MiniGridParams:
        s = self.size
        return MiniGridParams(walls=_walls(s), goal_x=s - 2, goal_y=s - 2)

    # ---- cells ----------------------------------------------------------------------------------
    @staticmethod
    def cell(state) -> tuple[jax.Array, jax.Array]:
        """((x, y), direction) as int32."""
        x = state.x.astype(jnp.int32)
        return x[:2], x[2]

    def view_cells(self, pos: jax.Array, direction: jax.Array) -> jax.Array:
        """(V, V, 2) world cells of the view [i, j]: the agent at (V // 2, V - 1), facing -j, its
        right +i."""
        forward = jnp.asarray(DIRECTIONS)[direction]
        right = jnp.asarray(DIRECTIONS)[(direction + 1) % 4]
        i, j = jnp.meshgrid(jnp.arange(VIEW), jnp.arange(VIEW), indexing="ij")
        return pos + forward * (VIEW - 1 - j)[..., None] + right * (i - VIEW // 2)[..., None]

    def is_wall(self, cells: jax.Array, params: MiniGridParams) -> jax.Array:
        inside = jnp.all((cells >= 0) & (cells < self.size), axis=-1)
        c = jnp.clip(cells, 0, self.size - 1)
        return ~inside | jnp.asarray(params.walls)[c[..., 0], c[..., 1]]

    def image(self, pos: jax.Array, direction: jax.Array, params: MiniGridParams) -> jax.Array:
        """MiniGrid's (7, 7, 3) view codes (int32)."""
        cells = self.view_cells(pos, direction)
        wall = self.is_wall(cells, params)
        goal = (cells[..., 0] == params.goal_x) & (cells[..., 1] == params.goal_y) & ~wall
        seen = jnp.ones_like(wall) if self.see_through_walls else visibility(~wall)
        code = jnp.where(wall[..., None], jnp.asarray(WALL), jnp.where(goal[..., None], jnp.asarray(GOAL),
                                                                       jnp.asarray(EMPTY)))
        code = code.at[VIEW // 2, VIEW - 1].set(jnp.asarray(EMPTY))  # the agent's own cell
        return jnp.where(seen[..., None], code, jnp.asarray(UNSEEN)).astype(jnp.int32)

    # ---- the protocol ---------------------------------------------------------------------------
    def reset_env(self, key, params):
        x = jnp.stack([jnp.asarray(params.start_x), jnp.asarray(params.start_y),
                       jnp.asarray(params.start_dir)]).astype(jnp.float32)
        state = EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        pos, d = self.cell(state)
        time = state.time + 1
        ahead = pos + jnp.asarray(DIRECTIONS)[d]
        forward = action == FORWARD
        moves = forward & ~self.is_wall(ahead, params)
        goal = moves & (ahead[0] == params.goal_x) & (ahead[1] == params.goal_y)
        new_pos = jnp.where(moves, ahead, pos)
        new_d = jnp.where(action == LEFT, (d + 3) % 4, jnp.where(action == RIGHT, (d + 1) % 4, d))
        reward = jnp.where(goal, 1.0 - 0.9 * time / params.max_steps_in_episode, 0.0)
        x = jnp.concatenate([new_pos, new_d[None]]).astype(jnp.float32)
        info = {"terminal": goal, "goal": goal, "blocked": forward & ~moves}
        return state.replace(x=x, time=time), (-reward).astype(jnp.float32), info

    def observe(self, state, params):
        pos, d = self.cell(state)
        return self.image(pos, d, params).reshape(-1).astype(jnp.float32)

    def state_features(self, state, params) -> jax.Array:
        """The authors' state-entropy features: (x, y, one-hot direction), (6,)."""
        pos, d = self.cell(state)
        return jnp.concatenate([pos.astype(jnp.float32), jax.nn.one_hot(d, 4, dtype=jnp.float32)])

    def observation_bound(self, params) -> float:
        return 10.0

    def action_space(self, params=None):
        return Discrete(3)

    def observation_space(self, params=None):
        return Box(0.0, 10.0, (VIEW * VIEW * 3,))


# ---- layouts (Ashlag et al.'s test perturbations) -----------------------------------------------
_BLOCK_CELLS = np.array([(i, j) for i in range(2, 9) for j in range(2, 9) if (i, j) not in ((2, 2), (8, 8))])
MAX_CELLS = 7  # the most cells a perturbation adds (blocks)


def perturbation_cells(name: str, key: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(cells (7, 2) int32, used (7,) bool, goal (2,) int32) of one of `LAYOUTS` in the authors' 10 x 10
    room: wall x = 4, y = 1..5; elbow (5..7, y), (5, y + 1), (5, y + 2), y uniform in {1..4}; 7 distinct
    random blocks in {2..8}^2 other than (2, 2) and (8, 8); the goal moved to a uniform cell of
    {2..7}^2. The random ones draw from `key` (jit/vmap-able over keys)."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}; known: {LAYOUTS}")
    if name in ("elbow", "blocks", "moved_goal") and key is None:
        raise ValueError(f"layout {name!r} is random: pass a key")
    goal = jnp.asarray([8, 8], jnp.int32)
    none = jnp.zeros((MAX_CELLS, 2), jnp.int32), jnp.zeros((MAX_CELLS,), bool)

    def pad(cells):
        cells = jnp.asarray(cells, jnp.int32)
        n = cells.shape[0]
        return (jnp.concatenate([cells, jnp.zeros((MAX_CELLS - n, 2), jnp.int32)]),
                jnp.arange(MAX_CELLS) < n)

    if name == "nominal":
        return *none, goal
    if name == "wall":
        return *pad([[4, y] for y in range(1, 6)]), goal
    if name == "elbow":
        y = jax.random.randint(key, (), 1, 5)
        cells = jnp.stack([jnp.stack([5, y]), jnp.stack([6, y]), jnp.stack([7, y]),
                           jnp.stack([5, y + 1]), jnp.stack([5, y + 2])])
        return *pad(cells), goal
    if name == "blocks":
        pick = jax.random.choice(key, _BLOCK_CELLS.shape[0], (MAX_CELLS,), replace=False)
        return *pad(jnp.asarray(_BLOCK_CELLS)[pick]), goal
    return *none, jax.random.randint(key, (2,), 2, 8).astype(jnp.int32)  # moved_goal


def layout(name: str, params: MiniGridParams, key: jax.Array | None = None) -> MiniGridParams:
    """`params` with the walls and goal of one of `LAYOUTS` (a 10 x 10 room)."""
    size = params.walls.shape[0]
    if size != 10:
        raise ValueError(f"the authors' layouts are for the 10 x 10 room, these params are {size} x {size}")
    cells, used, goal = perturbation_cells(name, key)
    walls = _walls(size).at[cells[:, 0], cells[:, 1]].max(used)
    return params.replace(walls=walls, goal_x=goal[0], goal_y=goal[1])


# ---- the tabular twin ---------------------------------------------------------------------------
def tabular_twin(env: MiniGridRoom, params: MiniGridParams, gamma: float):
    """The room as a finite MDP over states (x, y, direction), index (x * size + y) * 4 + direction:
    returns (mdp, observations (S, 147), initial (S,)). Deterministic transitions as `step_env`; the
    reward is 1 for the step onto the goal (the time-free part of MiniGrid's 1 - 0.9 t / T, which is
    not Markov in the cell) and states on the goal cell are terminal; wall cells' states are
    unreachable self-loops. No time limit: compare with rollouts long enough that gamma^T is
    negligible. Concrete params only (NumPy)."""
    from entrolab.tabular.mdp import FiniteMDP

    size = env.size
    walls = np.asarray(params.walls)
    goal = (int(params.goal_x), int(params.goal_y))
    idx = lambda x, y, d: (x * size + y) * 4 + d  # noqa: E731
    n = size * size * 4
    p = np.zeros((n, 3, n))
    r = np.zeros((n, 3))
    terminal = np.zeros(n, bool)
    for x in range(size):
        for y in range(size):
            for d in range(4):
                s = idx(x, y, d)
                if walls[x, y] or (x, y) == goal:
                    p[s, :, s] = 1.0
                    terminal[s] = (x, y) == goal
                    continue
                p[s, LEFT, idx(x, y, (d + 3) % 4)] = 1.0
                p[s, RIGHT, idx(x, y, (d + 1) % 4)] = 1.0
                ax, ay = x + DIRECTIONS[d][0], y + DIRECTIONS[d][1]
                if walls[ax, ay]:
                    p[s, FORWARD, s] = 1.0
                else:
                    p[s, FORWARD, idx(ax, ay, d)] = 1.0
                    r[s, FORWARD] = float((ax, ay) == goal)
    xs, ys, ds = np.meshgrid(np.arange(size), np.arange(size), np.arange(4), indexing="ij")
    states = np.stack([xs.ravel(), ys.ravel(), ds.ravel()], axis=1).astype(np.float32)
    observe = jax.jit(jax.vmap(lambda x: env.observe(EnvState(x=x), params)))
    initial = np.zeros(n)
    initial[idx(int(params.start_x), int(params.start_y), int(params.start_dir))] = 1.0
    mdp = FiniteMDP.create(p, r, gamma, terminal=terminal)
    return mdp, np.asarray(observe(jnp.asarray(states))), initial
