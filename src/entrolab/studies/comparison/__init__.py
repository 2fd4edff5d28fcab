"""The comparison study (``kind = "comparison"``): learning algorithms x tasks x seeds.

The "MaxEnt misleads" study (configs/misleads.toml) asks whether SAC fails on
precision tasks where PPO succeeds and whether SAC-AdaEnt closes the gap.
Modules: `config` (methods, tasks and their options), `units` (train,
landscape), `tables` (IQMs with bootstrap intervals, probabilities of
improvement, equal-budget returns, landscapes), `schema` (names shared by
tables and report), `report` (sections, from the tables only). `KIND` is what
the study engine runs (`entrolab.study.kinds`).

Study directory: ``train/TASK/METHOD/`` (checkpoints/, runs.parquet,
metrics.parquet), ``units/landscape/TASK/METHOD/``, ``tables/*.parquet``,
``report/``.
"""

from entrolab.study.kinds import Kind
from entrolab.studies.comparison import report, schema, tables, units
from entrolab.studies.comparison.config import ComparisonConfig, MethodSpec, TaskSpec
from entrolab.studies.comparison.tables import probability_of_improvement

KIND = Kind(name="comparison", config_model=ComparisonConfig, tables=schema.TABLES, plan=units.plan,
            execute=units.execute, output_path=units.output_path, build_tables=tables.build_tables,
            report=report.report)

__all__ = ["KIND", "ComparisonConfig", "MethodSpec", "TaskSpec", "probability_of_improvement"]
