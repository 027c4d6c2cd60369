"""The merchant's pages: thin routes over `OnboardingService`, rendered on the server.

Every page works without JavaScript. Submitted keys are never rendered back; a form that
fails re-renders with the error next to its field (422), one that succeeds answers 303.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from miva_connect.api.deps import ClientAddress, OnboardingDep
from miva_connect.errors import AppError, Conflict, NotFound, SessionExpired
from miva_connect.middleware import SECURITY_HEADERS
from miva_connect.miva import ROLE_GROUP_PROBES
from miva_connect.onboarding.credentials import StoreCredentials
from miva_connect.onboarding.results import SessionView
from miva_connect.onboarding.service import OnboardingService
from miva_connect.web.csrf import form_token, origin_of, same_origin_request, token_matches
from miva_connect.web.strings import strings

router = APIRouter(prefix="/connect/sessions", tags=["pages"], include_in_schema=False)

_templates = Environment(
    loader=PackageLoader("miva_connect.web", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Errors a merchant can act on in the form; anything else goes to the app's handlers.
_FORM_ERRORS = frozenset({422, 429})
_MAX_FORM_FIELDS = 16
REQUIRED_GROUPS = tuple(ROLE_GROUP_PROBES)


def static_files() -> StaticFiles:
    return StaticFiles(packages=[("miva_connect.web", "static")])


@dataclasses.dataclass(frozen=True)
class FormError:
    """What failed, for the template: the message, the field it concerns, and its lists."""

    code: str
    message: str
    field: str | None
    groups: list[str] = dataclasses.field(default_factory=list)
    addresses: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_app_error(cls, error: AppError) -> FormError:
        return cls(
            code=error.code,
            message=error.message,
            field=error.field,
            groups=[str(g) for g in error.extra.get("missing_groups", [])],
            addresses=[str(a) for a in error.extra.get("egress_ips", [])],
        )


def _render(
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = _templates.get_template(template).render(t=strings(), **context)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _csp_allowing_form_target(target_url: str) -> dict[str, str]:
    """The credentials form ends in a redirect to the channel: browsers check `form-action`
    on every hop of a form's redirects, so the channel's origin is allowed there too."""
    origin = origin_of(target_url)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    if origin.startswith(("https://", "http://")):
        csp = csp.replace("form-action 'self'", f"form-action 'self' {origin}")
    return {"Content-Security-Policy": csp}


def _gone(error: AppError) -> HTMLResponse:
    expired = isinstance(error, SessionExpired)
    heading = "gone_expired_heading" if expired else "gone_unknown_heading"
    return _message(error.status_code, heading, "gone_text")


def page_for_error(status_code: int) -> HTMLResponse | None:
    """An HTML page for the app-wide errors that reach a merchant's page (413, 503)."""
    keys = {
        413: ("too_large_heading", "too_large_text"),
        503: ("unavailable_heading", "unavailable_text"),
    }.get(status_code)
    return _message(status_code, *keys) if keys else None


def _message(status_code: int, heading_key: str, text_key: str) -> HTMLResponse:
    return _render(
        "message.html", status_code=status_code, heading_key=heading_key, text_key=text_key
    )


def _forbidden() -> HTMLResponse:
    return _message(status.HTTP_403_FORBIDDEN, "forbidden_heading", "forbidden_text")


class _FormRefused(Exception):
    """The CSRF checks refused the request, or its body is not a form we read."""

    def __init__(self, response: HTMLResponse) -> None:
        self.response = response


def _see_session(token: str) -> RedirectResponse:
    return RedirectResponse(f"/connect/sessions/{token}", status.HTTP_303_SEE_OTHER)


def _session_form(
    token: str,
    view: SessionView,
    onboarding: OnboardingService,
    *,
    step_one: bool,
    error: FormError | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    step = 1 if step_one or not view.store_url else 2
    return _render(
        "session.html",
        status_code=status_code,
        headers={**_csp_allowing_form_target(view.channel_redirect_url), **(headers or {})},
        view=view,
        step=step,
        error=error,
        values=values or {},
        csrf_token=form_token(token),
        action_base=f"/connect/sessions/{token}",
        egress_ips=list(onboarding.egress_ips),
        groups=REQUIRED_GROUPS,
    )


async def _read_form(request: Request, token: str, public_url: str) -> dict[str, str]:
    """The submitted text fields; `_FormRefused` when the CSRF checks refuse the request."""
    if not same_origin_request(request.headers, public_url):
        raise _FormRefused(_forbidden())
    try:
        form = await request.form(max_files=0, max_fields=_MAX_FORM_FIELDS)
    except HTTPException as error:
        if error.status_code != status.HTTP_400_BAD_REQUEST:
            raise  # 413: the body limit's answer
        raise _FormRefused(
            _message(status.HTTP_400_BAD_REQUEST, "bad_form_heading", "bad_form_text")
        ) from None
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    if not token_matches(token, values.get("csrf_token", "")):
        raise _FormRefused(_forbidden())
    return values


async def _failed(
    token: str,
    onboarding: OnboardingService,
    error: AppError,
    *,
    step_one: bool,
    values: dict[str, str],
) -> Response:
    if isinstance(error, NotFound | SessionExpired):
        return _gone(error)
    if isinstance(error, Conflict):  # already connected: the session page says so
        return _see_session(token)
    if error.status_code not in _FORM_ERRORS:
        raise error
    try:
        view = await onboarding.describe(token)
    except (NotFound, SessionExpired) as gone:
        return _gone(gone)
    return _session_form(
        token,
        view,
        onboarding,
        step_one=step_one,
        error=FormError.from_app_error(error),
        values=values,
        status_code=error.status_code,
        headers=error.headers,
    )


@router.get("/{token}", response_class=HTMLResponse)
async def session_page(
    token: str,
    onboarding: OnboardingDep,
    change: Annotated[bool, Query(description="Show the Store URL step again.")] = False,
) -> Response:
    """The session's page: the current step, or that it is done."""
    try:
        view = await onboarding.describe(token)
        if view.status == "connected":
            return _render(
                "done.html", view=view, continue_url=await onboarding.redirect_url(token)
            )
    except (NotFound, SessionExpired) as gone:
        return _gone(gone)
    return _session_form(token, view, onboarding, step_one=change)


@router.post("/{token}/store-url", response_class=HTMLResponse)
async def submit_store_url(
    token: str, request: Request, onboarding: OnboardingDep, client: ClientAddress
) -> Response:
    """Step 1: check the Store URL, then show step 2."""
    try:
        form = await _read_form(request, token, onboarding.public_url)
    except _FormRefused as refused:
        return refused.response
    raw_url = form.get("store_url", "")
    try:
        await onboarding.check_store_url(token, raw_url, client)
    except AppError as error:
        return await _failed(token, onboarding, error, step_one=True, values={"store_url": raw_url})
    return _see_session(token)


@router.post("/{token}/credentials", response_class=HTMLResponse)
async def submit_credentials(
    token: str, request: Request, onboarding: OnboardingDep, client: ClientAddress
) -> Response:
    """Step 2: validate the credentials; on success go back to the channel."""
    try:
        form = await _read_form(request, token, onboarding.public_url)
    except _FormRefused as refused:
        return refused.response
    store_code = form.get("store_code", "")
    submitted = StoreCredentials(
        store_url="",  # the session's checked Store URL
        store_code=store_code,
        api_key=form.get("api_key", ""),
        signing_key=form.get("signing_key", ""),
    )
    try:
        connection = await onboarding.connect(token, submitted, client)
    except AppError as error:
        return await _failed(
            token,
            onboarding,
            error,
            step_one=error.field == "store_url",
            values={"store_code": store_code},
        )
    if connection.warnings:
        view = await onboarding.describe(token)
        return _render(
            "connected.html",
            headers=_csp_allowing_form_target(connection.redirect_url),
            view=view,
            warnings=connection.warnings,
            continue_url=connection.redirect_url,
        )
    return RedirectResponse(connection.redirect_url, status.HTTP_303_SEE_OTHER)
