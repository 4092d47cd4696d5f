"""Tools around the pipeline: `picar read` (still photos), `picar eval` (score the models), `picar bench` and the
watchlist benchmark."""
