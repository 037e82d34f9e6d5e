"""The one error base class of stylerec: a user-facing error that knows its HTTP status and its CLI exit code.

Every error a user can cause (a bad image, an unknown id, a full queue, a bad URL...) derives from
`StylerecError`; the service answers it with `http_status` and `{"detail": ...}` (one handler), the CLI prints its
message and exits with `exit_code` (one `except`). Anything else that escapes is a bug: a 500 in the service, a
traceback in the CLI.

Subclasses keep their older stdlib parent where callers catch it (`ImageError` is still a `ValueError`, `NotFound`
a `KeyError`), so list the stdlib parent second: `class ImageError(StylerecError, ValueError)`.
"""

from __future__ import annotations

from typing import Any

USER_ERROR_EXIT = 2  # what the CLI has always returned for a user error (argparse's own errors exit 2 as well)


class StylerecError(Exception):
    """A user-facing error: its message says what is wrong and what to do.

    Class attributes give the defaults; each may be overridden per instance (`http_status=`, `exit_code=`,
    `retry_after=` keyword arguments). `detail` is the text of the JSON body (the message unless a subclass
    phrases it for the web); `retry_after` (seconds), when set, is sent as a Retry-After header.
    """

    http_status: int = 400
    exit_code: int = USER_ERROR_EXIT
    retry_after: int | None = None

    def __init__(
        self,
        *args: Any,
        http_status: int | None = None,
        exit_code: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(*args)
        if http_status is not None:
            self.http_status = http_status
        if exit_code is not None:
            self.exit_code = exit_code
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def message(self) -> str:
        """The error's message (the first argument; for a `KeyError` parent, without its quotes)."""
        return str(self.args[0]) if self.args else type(self).__name__

    @property
    def detail(self) -> str:
        """The short text of the JSON body (`{"detail": ...}`); the message unless a subclass says otherwise."""
        return self.message

    def body(self) -> dict[str, Any]:
        """The JSON body of the HTTP answer; subclasses may add fields (e.g. the id of a running job)."""
        return {"detail": self.detail}

    def http_headers(self) -> dict[str, str]:
        """Extra HTTP headers of the answer (Retry-After when the error says when to try again)."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def __str__(self) -> str:
        return self.message


class BadInput(StylerecError, ValueError):
    """A value given by the user (a flag, a field, a file's contents) that cannot be used: 422."""

    http_status = 422


class NoSuchFile(StylerecError, FileNotFoundError):
    """A path given by the user that does not exist or is not what it should be (a folder, an image): 404."""

    http_status = 404


class NotFound(StylerecError, KeyError):
    """An id (item, shopper, style, job...) that the store or the catalog does not hold: 404. The only lookup
    failure the service answers with 404; still a `KeyError` for the callers that catch one."""

    http_status = 404

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class Unavailable(StylerecError):
    """Something the request needs that is not there or not reachable right now (a database server): 503."""

    http_status = 503


class Conflict(StylerecError):
    """A valid request that the current state does not allow (something already there, or not there yet): 409."""

    http_status = 409


class NothingToTrain(Conflict, ValueError):
    """No events (or ratings) to train on yet. A 409, not a 404 (nothing named in the request is missing) nor a
    422 (the request itself is fine): the shop's state conflicts with it, and the same request succeeds once
    events are recorded."""
