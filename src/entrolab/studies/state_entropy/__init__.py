"""The state-entropy study (``kind = "state-entropy"``): does regularising the state distribution buy
robustness to structured perturbations where policy entropy does not?

After Ashlag et al. (arXiv 2506.07085): PPO without regularisation, with policy entropy, with the
k-NN state-entropy bonus and with both, each coefficient chosen as the largest that costs less
than `max_cost` of the nominal return; trained in the nominal room, evaluated in the room with a
wall, an elbow, random blocks and a moved goal (`entrolab.envs.room`); the bonus's rollout-count
sensitivity. Modules: `config`, `units`, `tables`, `schema`, `report`. `KIND` is what the study
engine runs.

Study directory: ``units/select/{none,policy,state}/``, ``units/train/RUN/``,
``units/evaluate/RUN/``, ``tables/*.parquet``, ``report/``.
"""

from entrolab.study.kinds import Kind
from entrolab.studies.state_entropy import report, schema, tables, units
from entrolab.studies.state_entropy.config import StateEntropyConfig

KIND = Kind(name="state-entropy", config_model=StateEntropyConfig, tables=schema.TABLES, plan=units.plan,
            execute=units.execute, output_path=units.output_path, build_tables=tables.build_tables,
            report=report.report)

__all__ = ["KIND", "StateEntropyConfig"]
