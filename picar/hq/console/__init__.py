"""`picar hq serve`: HQ's web console for operators (issue 17 item 3), on Starlette like the in-car page.

    app.py       create_app(config): the pages, middleware, database pool and live listener composed
    page.py      Page / NavEntry (what a screen registers), render() in the operator's language, forms
    security.py  roles, sessions, CSRF and Origin checks, login throttling, the security headers
    db.py        a few pooled psycopg connections; queries run on worker threads
    live.py      LISTEN picar_hq (and a position check) -> every open page's event stream
    stream.py    GET /events (Server-Sent Events)
    auth.py      login, logout, language switch, one's own account
    fleet.py     the live fleet and its map (static/map.js draws picar/hq/basemap)
    hits.py      hits with their evidence images and dispositions
    alarms.py    P1 hits and heat alarms, sounding until acknowledged
    server.py    uvicorn with TLS; refuses to listen off loopback without it
    cli.py       `picar hq serve`, `picar hq account add|list|disable|enable|passwd`
templates/ are Jinja2 (autoescaped, gettext through picar.i18n.jinja); static/ the CSS and scripts.
docs/hq.md describes the console for operators and administrators.
"""
