"""One error type carrying a sentence a member or admin can act on, plus a few kinds of it."""

from __future__ import annotations


class ListservError(Exception):
    """A problem a person can fix; str() is the one-line message to show them."""

    smtp_code = "550 5.7.1"
    exit_code = 1


class ConfigError(ListservError):
    """The config file (or a list name given on the command line) is wrong."""

    exit_code = 2


class UsageError(ListservError):
    """A command-line argument is wrong."""

    exit_code = 2


class StorageError(ListservError):
    """The store could not be reached; the sending MTA should try again."""

    smtp_code = "451 4.3.0"


class NotAMember(ListservError):
    """The address is not subscribed to the list."""


class TokenError(ListservError):
    """A token is unknown, used or expired."""
