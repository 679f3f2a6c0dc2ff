"""The reporter's page, ``/track`` (issue #17): sign-in by receipt code and email, signed
links from letters, the case in plain words, forms to answer a details request.

A router of its own, included by ``web.app.create_app`` after the API's; templates in
``web/templates/``, assets in ``web/static/`` (served at ``/static``). Route functions
call the starter functions, as the API's do.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reporters"])
