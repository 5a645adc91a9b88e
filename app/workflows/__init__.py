"""Workflows on Dapr Workflow, run in the app: `host.py` (the workflow runtime, the step
activity, a workflow run's drive). What an author writes against is `app.workers.flow`."""
