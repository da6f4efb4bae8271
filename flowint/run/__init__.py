"""The run's core: plain-data state, and the parts that advance it.

- :class:`~flowint.run.state.RunState`: counters, history, buffer, progress (what a
  checkpoint saves).
- :class:`~flowint.run.trainer.Trainer`: flow, optimizer, loss, one training iteration.
- :class:`~flowint.run.estimator.Estimator`: frozen samplers, quasi-random randomizations,
  the combination of unbiased estimates.
- :class:`~flowint.run.policy.Policy`: every decision about the budget.
- :class:`~flowint.run.driver.CallDriver`: carries out the policy's steps for one call.
"""

from .estimator import Estimator
from .policy import Policy
from .settings import DEFAULTS, Settings
from .state import Measurement, Piece, RunState
from .trainer import Trainer

__all__ = ["DEFAULTS", "Estimator", "Measurement", "Piece", "Policy", "RunState", "Settings",
           "Trainer"]
