"""The merchant's pages: server-rendered forms over the same `OnboardingService` as the API."""

from miva_connect.web.pages import router as web_router
from miva_connect.web.pages import static_files

__all__ = ["static_files", "web_router"]
