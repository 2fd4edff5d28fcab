"""entrolab: what entropy regularisation does to reinforcement-learning policies.

Importing entrolab registers its environments with gymnasium
(`entrolab/Lorenz-v0`, `entrolab/KuramotoSivashinsky-v0`).
"""

__version__ = "0.1.0"

from entrolab.checkpoint import load_policy  # noqa: E402
from entrolab.envs import make  # noqa: E402
from entrolab.envs.gymnasium_adapter import register_gymnasium_envs  # noqa: E402

register_gymnasium_envs()

__all__ = ["__version__", "load_policy", "make"]
