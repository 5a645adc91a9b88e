"""Workflows on Dapr Workflow: `flow.py` is what an author writes against, `host.py` runs them
in the app (the workflow runtime, the step activity, the workflow run's drive)."""
