"""Metrics and run statistics in one place: the instruments, declared once and exported both
over OpenTelemetry and to Prometheus (`metrics.py`), and the one tally type the dashboard's
charts and percentiles are made of, gathered in memory, stored per minute and hour, and read
back (`tally.py`, `run_stats.py`)."""
