"""notepipe harness: real services, faults, traces, a checker and reports, as a pytest plugin."""
