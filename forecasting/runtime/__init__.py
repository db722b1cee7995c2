"""How a run runs: Prefect access, phases and progress, memory hygiene, console output, fault points for tests."""
