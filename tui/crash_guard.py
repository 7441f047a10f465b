"""Keep the dashboard up when an action fails: one line for the user, the rest for the log."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])


class Reporter(Protocol):
    def report_exception(self, where: str, error: BaseException) -> None: ...


def guard(func: F) -> F:
    """Wrap a handler or action of a widget: any exception is reported, never raised.

    Textual stops a widget's message loop after an unhandled exception and ends the app;
    a bug in one action must cost the user one notification, not the session.
    """
    where = func.__qualname__

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await func(self, *args, **kwargs)
            except Exception as e:
                cast(Reporter, self.app).report_exception(where, e)
                return None

        return cast(F, async_wrapper)

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except Exception as e:
            cast(Reporter, self.app).report_exception(where, e)
            return None

    return cast(F, wrapper)
