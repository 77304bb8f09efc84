pytest_plugins = ["harness.fixtures.services", "harness.fixtures.pipeline"]
