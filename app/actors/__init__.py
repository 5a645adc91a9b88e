"""Dapr actors: the Orleans-grain equivalent that keeps N instances from doing the same work twice.

Interfaces (the method names daprd routes) are in `interfaces.py`; each implementation in a
module of its own; `client.py` calls them through the sidecar; `hosting.py` registers them.
"""
