"""`auditor serve`: audits on a schedule, and their reports over read-only HTTP.

    schedule    parse_every; Scheduler: one audit at start, then one per interval, never two at
                once, in its own thread; the only writer to the database
    app         the Starlette app: reports, runs, JSON API, /healthz, /metrics; reads only
    metrics     the Prometheus collector that reads the store at each scrape
    service     binds the socket, runs the scheduler and uvicorn, owns SIGTERM/SIGINT

Imported by the CLI only for `serve`, so `audit` and `lint` never load the ASGI stack.
"""
