"""The contracts between the pipeline and whoever reads it (operators, the harness), one
module per boundary, imported by both sides: :mod:`~notepipe.contracts.rq` (Redis keys,
job ids, worker names) and :mod:`~notepipe.contracts.spans` (span names, attributes,
outcomes). Nothing here opens a connection or reads the environment.
"""
