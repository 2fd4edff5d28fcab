"""Obstacle2D: a point that must go around a thin wall to reach a goal.

One of the precision-control tasks of "MaxEnt misleads" (Zhang, Chang, Gao,
ICML 2025, arXiv 2506.05615), rebuilt from its public code (github
ruipengZ/maxent-mislead, environment/custom_gym/envs/Obstacle2D/obstacle2d.py,
commit ba966a6; facts in notes/research.md):

    p_{t+1} = p_t + dt * v_t,   v_t = action_scale * a_t,   a_t in [-1, 1]^2

with dt = 1, action_scale = 3 (velocities in [-3, 3]^2), start p_0 = (0, 0),
goal (3, 0), a wall rectangle x in [2, 2.05], y in [-2, 2], at most 50 steps.
Reward of a step, checked in this order:

- collision: the straight segment [p_t, p_{t+1}] meets the (closed) wall
  rectangle -> reward -200, the episode terminates;
- goal: |p_{t+1} - goal| < 0.1 -> reward +500, the episode terminates;
- otherwise the decrease in distance to the goal, |p_t - g| - |p_{t+1} - g|
  (so the rewards of an episode without collision or goal telescope to the
  total decrease in distance).

The straight line to the goal hits the wall; the detour around either end of
the wall (|y| > 2) costs some distance-reward before it earns the +500. A
local optimum exists: stop in front of the wall (no collision, no goal), which
a policy that follows the shaped reward greedily ends up in.

Collision test. The step's segment is clipped against the rectangle by the
slab (Liang-Barsky) method: per axis, the parameter interval t in [0, 1] for
which the point lies between the two bounds; the segment meets the rectangle
iff the intersection of the two intervals with [0, 1] is non-empty. This
counts a step that jumps over the thin wall in one move, a step that ends
inside it, and a step that touches its boundary (closed rectangle).
Difference from the public code (unconfirmed whether intentional there): it
tests proper crossings of the four edges only (touching a face or an end
point on an edge is not a collision there), and its point-in-rectangle test
can never fire (its rectangle is given as (x1, y1, x2, y2) = (2, 2, 2.05, -2)
and it asks y1 < y < y2). For every step that crosses the wall's interior the
two agree.

Observation: ((x - c) / c, y / obs_y_scale) with c = wall_x + wall_width / 2
(the wall's centre line, 2.025) and obs_y_scale = 3, as in the public code;
the goal is fixed, so the position is the whole state.

Differences from the public code, all documented choices: its episodes run
50 rewarded steps and end by truncation on a 51st step with reward 0; here
the 50th step truncates (`max_steps_in_episode` = 50). The start may be
randomised (`init_std`, default 0: the public code's fixed start).

The rest of the protocol is entrolab's (`core.Environment`): the action is
clipped to [-1, 1]^2, actuation noise (`action_noise_std`, in action units)
and observation noise (`obs_noise_std`, in observation units) are params; a
non-finite or out-of-bound position ends the episode with a bounded penalty.
A natural end (collision or goal) is reported by `step_env` as
`info["terminal"]`, and `core.NaturalEnds.step` marks it `terminated` and
auto-resets, as for the probe environments. The step's `info` also carries
booleans `collision` and `goal`.

Obstacle2D is an `Environment`, not a `ControlSystem`: its reward depends on
the transition (the segment and the distance decrease), not on the next
state alone, and its episodes end naturally.
"""

from __future__ import annotations

import math
import jax
import jax.numpy as jnp
from flax import struct

from entrolab.envs.core import EnvParams, EnvState, NaturalEnds
from entrolab.envs.spaces import Box


@struct.dataclass
class Obstacle2DParams(EnvParams):
    """Every physical quantity of Obstacle2D (all vmappable).

    Attributes:
        dt: duration of a control step.
        action_scale: velocity per unit action (velocities in [-3, 3]^2).
        start_x, start_y: centre of the initial position.
        init_std: std of a Gaussian offset of the initial position (0: fixed start).
        goal_x, goal_y, goal_radius: the goal, reached when |p - goal| < goal_radius.
        wall_x, wall_width: the wall spans x in [wall_x, wall_x + wall_width].
        wall_y_low, wall_y_high: the wall spans y in [wall_y_low, wall_y_high].
        collision_penalty: reward -collision_penalty on a collision.
        goal_reward: reward on reaching the goal.
        obs_y_scale: the observed y is y / obs_y_scale.
    """

    max_steps_in_episode: int = 50
    dt: float = 1.0
    action_scale: float = 3.0
    start_x: float = 0.0
    start_y: float = 0.0
    init_std: float = 0.0
    goal_x: float = 3.0
    goal_y: float = 0.0
    goal_radius: float = 0.1
    wall_x: float = 2.0
    wall_width: float = 0.05
    wall_y_low: float = -2.0
    wall_y_high: float = 2.0
    collision_penalty: float = 200.0
    goal_reward: float = 500.0
    obs_y_scale: float = 3.0
    divergence_bound: float = 1e3
    # above the largest per-step cost (the collision's 200); the goal's cost is negative
    cost_cap: float = 1e3


def segment_hits_rectangle(
    p0: jax.Array, p1: jax.Array, low: jax.Array, high: jax.Array
) -> jax.Array:
    """Whether the closed segment [p0, p1] meets the closed box [low, high].

    Slab (Liang-Barsky) test: along p(t) = p0 + t (p1 - p0), t in [0, 1], axis i
    keeps the point between low_i and high_i for t in [t_in_i, t_out_i]; the
    segment meets the box iff max(0, t_in) <= min(1, t_out) over all axes. An
    axis along which the segment does not move keeps all t (if p0_i is within
    the bounds) or none. Shapes: p0, p1, low, high (d,); returns a bool scalar.
    Non-finite input gives False (never NaN).
    """
    d = p1 - p0
    still = d == 0
    d_safe = jnp.where(still, 1.0, d)
    t_a = (low - p0) / d_safe
    t_b = (high - p0) / d_safe
    inside = (p0 >= low) & (p0 <= high)
    t_in = jnp.where(still, jnp.where(inside, -jnp.inf, jnp.inf), jnp.minimum(t_a, t_b))
    t_out = jnp.where(still, jnp.where(inside, jnp.inf, -jnp.inf), jnp.maximum(t_a, t_b))
    enter = jnp.maximum(jnp.max(t_in), 0.0)
    leave = jnp.minimum(jnp.min(t_out), 1.0)
    return enter <= leave


def point_start(key: jax.Array, params) -> EnvState:
    """The initial state of a point task: (start_x, start_y) plus N(0, init_std^2) jitter."""
    dtype = jnp.result_type(float)
    start = jnp.stack([jnp.asarray(params.start_x), jnp.asarray(params.start_y)]).astype(dtype)
    x = start + params.init_std * jax.random.normal(key, (2,), dtype)
    return EnvState(x=x, time=jnp.zeros((), jnp.int32), num_diverged=jnp.zeros((), jnp.int32))


class Obstacle2D(NaturalEnds[EnvState, Obstacle2DParams]):
    """Obstacle2D (see the module docstring). State `x` = position (2,)."""

    name = "obstacle2d"

    def __init__(self):  # no static options (make() reads the constructor's signature)
        pass

    def default_init_log_std(self, params: Obstacle2DParams) -> float:
        """The authors' PPO starts from log-std -0.5 in velocity units (std 0.61):
        log(e^-0.5 / action_scale) in [-1, 1] units (-1.60 at the default scale 3)."""
        return -0.5 - math.log(float(params.action_scale))

    @property
    def default_params(self) -> Obstacle2DParams:
        return Obstacle2DParams()

    # ---- physics --------------------------------------------------------------
    def wall(self, params: Obstacle2DParams) -> tuple[jax.Array, jax.Array]:
        """The wall rectangle's lower-left and upper-right corners, (2,) each."""
        low = jnp.stack([jnp.asarray(params.wall_x), jnp.asarray(params.wall_y_low)])
        high = jnp.stack(
            [jnp.asarray(params.wall_x + params.wall_width), jnp.asarray(params.wall_y_high)]
        )
        return low, high

    def goal(self, params: Obstacle2DParams) -> jax.Array:
        return jnp.stack([jnp.asarray(params.goal_x), jnp.asarray(params.goal_y)])

    def distance_to_goal(self, p: jax.Array, params: Obstacle2DParams) -> jax.Array:
        return jnp.linalg.norm(p - self.goal(params).astype(p.dtype))

    def reset_env(self, key, params):
        state = point_start(key, params)
        return self.observe(state, params), state

    def step_env(self, key, state, action, params):
        p0 = state.x
        p1 = p0 + params.dt * params.action_scale * action.astype(p0.dtype)
        low, high = self.wall(params)
        collision = segment_hits_rectangle(p0, p1, low.astype(p0.dtype), high.astype(p0.dtype))
        goal = ~collision & (self.distance_to_goal(p1, params) < params.goal_radius)
        progress = self.distance_to_goal(p0, params) - self.distance_to_goal(p1, params)
        reward = jnp.where(
            collision, -params.collision_penalty, jnp.where(goal, params.goal_reward, progress)
        )
        info = {"terminal": collision | goal, "collision": collision, "goal": goal}
        return state.replace(x=p1, time=state.time + 1), (-reward).astype(p0.dtype), info

    def observe(self, state, params):
        centre = params.wall_x + 0.5 * params.wall_width
        x, y = state.x[0], state.x[1]
        return jnp.stack([(x - centre) / centre, y / params.obs_y_scale]).astype(state.x.dtype)

    def observation_bound(self, params: Obstacle2DParams) -> float:
        """|obs_i| <= this for any position within the divergence bound (noise-free)."""
        bound = float(params.divergence_bound)
        centre = float(params.wall_x) + 0.5 * float(params.wall_width)
        return max((bound + abs(centre)) / abs(centre), bound / float(params.obs_y_scale))

    def action_space(self, params=None):
        return Box(-1.0, 1.0, (2,))

    def observation_space(self, params=None):
        return Box(-jnp.inf, jnp.inf, (2,))
