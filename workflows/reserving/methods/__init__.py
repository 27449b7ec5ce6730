"""The reserving methods: each takes a triangle and the actuary's choices, returns a result.

``chain_ladder`` (with Mack's standard errors), and in ``expected`` the methods that
blend it with an expected loss: Bornhuetter-Ferguson, Benktander and Cape Cod. The ODP
bootstrap lives in ``workflows.reserving.uncertainty``.
"""

from workflows.reserving.methods.chain_ladder import chain_ladder_mack
from workflows.reserving.methods.expected import benktander, bornhuetter_ferguson, cape_cod

METHODS = ("chain_ladder", "bornhuetter_ferguson", "benktander", "cape_cod", "bootstrap_odp")

__all__ = ["METHODS", "benktander", "bornhuetter_ferguson", "cape_cod", "chain_ladder_mack"]
