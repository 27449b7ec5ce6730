"""How uncertain the reserves are: Mack's standard errors and the ODP bootstrap.

``mack`` is plain Python. ``bootstrap`` simulates with numpy, which it imports when a
bootstrap runs (``bootstrap_odp``), never when this package is imported.
"""

from workflows.reserving.uncertainty.mack import MackEstimate, mack_standard_errors

__all__ = ["MackEstimate", "mack_standard_errors"]
