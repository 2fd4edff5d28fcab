"""Functional environments (gymnax >= 1.0 semantics) and their registry."""

from entrolab.envs.core import ControlSystem, Environment, EnvParams, EnvState
from entrolab.envs.ks import KSParams, KuramotoSivashinsky
from entrolab.envs.lorenz import Lorenz, LorenzParams, lorenz_equilibria
from entrolab.envs.registry import make, registered, replace_params
from entrolab.envs.spaces import Box

__all__ = [
    "Box",
    "EnvParams",
    "EnvState",
    "Environment",
    "KSParams",
    "KuramotoSivashinsky",
    "Lorenz",
    "LorenzParams",
    "lorenz_equilibria",
    "make",
    "registered",
    "replace_params",
]
