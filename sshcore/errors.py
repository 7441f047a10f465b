"""Error types that front ends turn into one clear line for the user."""

from __future__ import annotations


class DevtuiError(Exception):
    """Base for every error a user may see; str() is the whole message."""


class ConfigError(DevtuiError):
    """The config file is invalid. Carries where, so the message names file, line and key."""

    def __init__(
        self, message: str, *, path: str = "", line: int | None = None, key: str = ""
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.key = key
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.path or "config"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.message}"


class SshCommandError(DevtuiError):
    """An ssh command line we cannot understand; names the offending token."""

    def __init__(self, message: str, token: str | None = None) -> None:
        self.token = token
        super().__init__(f"{message}: {token!r}" if token is not None else message)


class UsageError(DevtuiError):
    """A value the user typed is not valid (a spec, a name); nothing was changed.

    `field` names the input it is about ("name", "spec"), so a front end can point at it
    (a form field, or the CLI's --name).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)
