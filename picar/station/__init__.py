"""The in-car station: the officer's page (`server`, `static/`), the K9 deployment log (`k9`, `k9_cli`) and the
kennel heat alarm (`heat`)."""
