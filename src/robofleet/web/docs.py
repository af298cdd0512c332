"""`/api/docs`: Swagger UI over the OpenAPI document, from files served here (fetched from npm at build time, like
htmx): no CDN, and no inline script, which the Content-Security-Policy (`default-src 'self'`) would block."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from robofleet.web.security import PUBLIC
from robofleet.web.templating import templates

SWAGGER_UI = "/static/vendor/swagger-ui"

router = APIRouter()


@router.get("/api/docs", dependencies=[Depends(PUBLIC)], include_in_schema=False)
def api_docs(request: Request) -> Response:
    """Public like the document it shows (`/openapi.json`); every operation it tries asks for a token."""
    return templates.TemplateResponse(
        request,
        "api_docs.html",
        {"openapi_url": request.app.openapi_url, "swagger_ui": SWAGGER_UI, "title": f"{request.app.title} API"},
    )
