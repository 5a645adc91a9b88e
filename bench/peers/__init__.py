"""The benchmark's peers: the same work (one MongoDB insert per task) run by Dramatiq and Taskiq
workers on the same Redis and the same database."""
