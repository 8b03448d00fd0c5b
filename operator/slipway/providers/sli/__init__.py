"""Where an evaluation's SLI values come from: Prometheus, HTTP JSON endpoints, the run's data.

Every source returns, per SLI, a number or an `SLIError` saying why there is none; none of
them raises into the engine or waits without bound (see `sources.collect`).
"""
