"""Web pages for front-line staff and marketers, mounted by the BentoML service at /ui."""

from __future__ import annotations

from typing import Any

from serving.ui.app import create_app

__all__ = ["create_app", "current_service_access", "current_service_audit", "current_service_state"]


def _service() -> Any:
    import bentoml
    from bentoml.exceptions import BentoMLException

    try:
        return bentoml.get_current_service()
    except BentoMLException:  # not instantiated yet: the pages say "still loading"
        return None


def current_service_state() -> Any:
    """The ServingState the running BentoML service answers from (None while it loads)."""
    holder = getattr(_service(), "holder", None)
    return None if holder is None else holder.current


def current_service_audit() -> Any:
    """The running service's exclusion audit, so products the pages hide are counted like the API's."""
    return getattr(_service(), "audit", None)


def current_service_access() -> Any:
    """The running service's access log: who read which customer, who exported which audience."""
    return getattr(_service(), "access_log", None)
