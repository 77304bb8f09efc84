"""The harness's own commands (``notepipe-harness stack|chaos|capacity``)."""
