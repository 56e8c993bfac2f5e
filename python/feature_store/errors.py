"""Exceptions raised by the client.

Every error the server raises reaches the caller as a :class:`FeatureStoreError` carrying the
server's SQLSTATE, message, detail and hint, so code can branch on ``err.sqlstate`` exactly as
SQL code branches on ``EXCEPTION WHEN undefined_object``. Errors the client detects itself
(before anything is sent) use the SQLSTATE the server would have used for the same mistake.
"""

from __future__ import annotations

from typing import Optional

import psycopg

__all__ = ["FeatureStoreError", "NotSupportedByServer"]


class FeatureStoreError(Exception):
    """An error from feature_store, with the PostgreSQL SQLSTATE that classifies it.

    Attributes:
        sqlstate: five-character SQLSTATE code, e.g. ``"42704"`` (``undefined_object``).
        message: the server's one-line message (``errmsg``).
        detail: ``errdetail``, or ``None``.
        hint: ``errhint``, or ``None``.
    """

    def __init__(self, sqlstate: Optional[str], message: str,
                 detail: Optional[str] = None, hint: Optional[str] = None) -> None:
        self.sqlstate = sqlstate
        self.message = message
        self.detail = detail
        self.hint = hint
        text = message if sqlstate is None else f"{message} (SQLSTATE {sqlstate})"
        if detail:
            text += f"\nDETAIL: {detail}"
        if hint:
            text += f"\nHINT: {hint}"
        super().__init__(text)

    @classmethod
    def from_psycopg(cls, err: psycopg.Error) -> "FeatureStoreError":
        diag = err.diag
        message = diag.message_primary or str(err).strip()
        return cls(err.sqlstate, message, diag.message_detail, diag.message_hint)


class NotSupportedByServer(FeatureStoreError):
    """A declaration the connected feature_store version cannot register (SQLSTATE 0A000)."""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__("0A000", message, hint=hint)
