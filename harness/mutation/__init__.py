"""The harness tests itself: a catalog of mutants of ``src/`` the checker must catch.

Each mutant is a small patch (``mutants/NN-name.patch``) that re-introduces a real
reliability bug; ``mutants/catalog.toml`` says which scenarios are expected to catch
it and which invariant should fire. :mod:`harness.mutation.runner` applies each
patch to a temporary copy of the repository (the working tree is never touched),
runs the catcher scenarios against the mutated code and reads the checker's verdict
from the run's ``summary.json``. A mutant is *killed* when a catcher's verdict is
``invalid`` with a named invariant; a scenario's own assert failing does not count.

``python -m harness.mutation`` (``make mutants``) runs the catalog and exits non-zero
on any survivor.
"""
