"""papermail: a daily email of the machine-learning papers that are trending.

Data flows one way: a source -> ``ingest`` -> Paper rows -> ``rank`` -> an Issue
with frozen items -> ``render`` (once per issue) -> ``dispatch`` (cheap
per-subscriber substitution, then a messenger) -> Delivery rows.
"""

__version__ = "0.1.0"
