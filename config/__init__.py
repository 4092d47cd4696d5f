"""The commented example configs; installed as `picar.examples` (see picar/paths.py)."""
