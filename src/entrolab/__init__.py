"""entrolab: what entropy regularisation does to reinforcement-learning policies.

Importing entrolab registers its environments with gymnasium
(`entrolab/Lorenz-v0`, `entrolab/KuramotoSivashinsky-v0`).
"""

from entrolab._version import __version__
from entrolab.checkpoint import load_policy
from entrolab.envs import make
from entrolab.envs.gymnasium_adapter import register_gymnasium_envs
from entrolab.interop import from_sb3

register_gymnasium_envs()

__all__ = ["__version__", "from_sb3", "load_policy", "make"]
