"""The shipped models and their sidecars; installed as `picar.models` (see picar/paths.py)."""
