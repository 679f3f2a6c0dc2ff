"""``whn-web``: the HTTP edge, for intake systems (``web.api``) and reporters (``web.track``).

An edge like the CLIs: route functions call the same ``starter`` functions
``whn-intake`` and ``whn-admin`` call, with the same one-line reasons, and hold no
business logic of their own. ``web.app.create_app`` builds the application; its
lifespan holds the Temporal client and an asyncpg pool in ``app.state``.

    web/app.py         create_app: settings, state, routers, middleware, error bodies
    web/deps.py        dependencies: settings, client, pool, the calling intake system
    web/errors.py      WhnError -> status code and {"error": reason}
    web/api.py         /api/v1: reports, details, case status (Bearer intake key)
    web/track.py       /track: the reporter's page (issue #17)
    web/health.py      /healthz, /readyz
    web/middleware.py  body limit (413 before parsing), request ids, access log, tracing
    web/main.py        the console script (uvicorn, graceful shutdown)
    web/templates/, web/static/   the reporter page's templates and assets
"""
