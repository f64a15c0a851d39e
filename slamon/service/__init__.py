"""`slamon run`: `serve` (process, signals, scheduler), `monitor` (a round: probers → engine →
store), `web` (the HTTP API) and `metrics` (what Prometheus reads)."""
