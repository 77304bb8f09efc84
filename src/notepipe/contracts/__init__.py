"""The contracts between the pipeline and whoever reads it (operators, the harness), one
module per boundary, imported by both sides: :mod:`~notepipe.contracts.rq` (Redis keys,
job ids, worker names), :mod:`~notepipe.contracts.spans` (span names, attributes,
outcomes) and :mod:`~notepipe.contracts.signals` (what a process answers). Nothing
here opens a connection or reads the environment.
"""
