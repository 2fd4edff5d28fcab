"""The landscape study (``kind = "landscape"``): what entropy does to the optimisation landscape.

After Ahmed et al. (ICML 2019): exact entropy-regularised policy gradient on the authors'
two-goal gridworld across tau, step sizes and initialisations; random-perturbation probes,
curvature and interpolations at the solutions. Modules: `config`, `units` (gridworld sweeps,
probes), `tables`, `schema`, `report`. `KIND` is what the study engine runs.

Study directory: ``units/gridworld/{constant,decay}/``, ``units/probes/``, ``tables/*.parquet``,
``report/``.
"""

from entrolab.study.kinds import Kind
from entrolab.studies.landscape import report, schema, tables, units
from entrolab.studies.landscape.config import LandscapeConfig

KIND = Kind(name="landscape", config_model=LandscapeConfig, tables=schema.TABLES, plan=units.plan,
            execute=units.execute, output_path=units.output_path, build_tables=tables.build_tables,
            report=report.report)

__all__ = ["KIND", "LandscapeConfig"]
