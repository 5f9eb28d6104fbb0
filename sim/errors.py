"""The one exceptions module of wssim.

``SecurityFault`` subclasses are the typed rejections a receiver raises; each carries the
standard fault code (a QName in WS-Security, WS-Trust or WS-SecureConversation: its prefix
and local name; ``sim/wire/soap.py`` maps the prefix to the namespace when it writes or
reads a SOAP fault). ``ScenarioError`` (a bad setting) and ``UsageError`` (a bad command
line) are what the command line turns into one line and exit status 2.

It imports nothing of wssim: every layer may raise these.
"""

from __future__ import annotations

from typing import ClassVar


class WssimError(Exception):
    """Base class of every error wssim raises on purpose."""


class ScenarioError(WssimError):
    """An invalid scenario value or command-line flag; ``key`` names the setting."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message

    def __reduce__(self):
        # rebuilt from its fields (a worker process sends it back pickled)
        return type(self), (self.key, self.message)


class UsageError(WssimError):
    """A command line the parser refuses (an unknown flag, a missing argument)."""


class SecurityFault(WssimError):
    """A message was refused. ``prefix`` + ``local`` is the standard fault code; the prefix
    is ``wsse`` (WS-Security), ``wst`` (WS-Trust) or ``wsc`` (WS-SecureConversation)."""

    prefix: ClassVar[str] = "wsse"
    local: ClassVar[str] = "InvalidSecurity"
    #: Whether a client may recover by itself (new token / new context) and retry.
    recoverable: ClassVar[bool] = False

    def __init__(self, reason: str, *, check: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the name of the receiver check that refused the message, for attack statistics
        self.check = check or self.local

    def __reduce__(self):
        # rebuilt from its fields (a worker process sends it back pickled)
        return _rebuild_fault, (type(self), self.reason, self.check)

    @property
    def code(self) -> str:
        """The fault code as ``prefix:Local`` (``wsse:InvalidSecurity``)."""
        return f"{self.prefix}:{self.local}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r}, check={self.check!r})"


def _rebuild_fault(cls: type[SecurityFault], reason: str, check: str) -> SecurityFault:
    return cls(reason, check=check)


class InvalidSecurity(SecurityFault):
    local = "InvalidSecurity"


class InvalidSecurityToken(SecurityFault):
    local = "InvalidSecurityToken"


class UnsupportedSecurityToken(SecurityFault):
    local = "UnsupportedSecurityToken"


class UnsupportedAlgorithm(SecurityFault):
    local = "UnsupportedAlgorithm"


class FailedAuthentication(SecurityFault):
    local = "FailedAuthentication"


class FailedCheck(SecurityFault):
    local = "FailedCheck"


class SecurityTokenUnavailable(SecurityFault):
    local = "SecurityTokenUnavailable"


class MessageExpired(SecurityFault):
    local = "MessageExpired"


class _TrustFault(SecurityFault):
    prefix = "wst"


class InvalidRequest(_TrustFault):
    local = "InvalidRequest"


class RequestFailed(_TrustFault):
    local = "RequestFailed"


class ExpiredData(_TrustFault):
    local = "ExpiredData"
    recoverable = True


class InvalidTimeRange(_TrustFault):
    local = "InvalidTimeRange"


class AuthenticationBadElements(_TrustFault):
    local = "AuthenticationBadElements"


class _ConversationFault(SecurityFault):
    prefix = "wsc"


class BadContextToken(_ConversationFault):
    local = "BadContextToken"
    recoverable = True


class UnknownDerivationSource(_ConversationFault):
    local = "UnknownDerivationSource"
    recoverable = True


class UnsupportedContextToken(_ConversationFault):
    local = "UnsupportedContextToken"


class RenewNeeded(_ConversationFault):
    local = "RenewNeeded"
    recoverable = True


class MalformedMessage(InvalidSecurity):
    """Not well-formed, or refused by the secure parser (DTD, entity, size, depth)."""


#: Every concrete fault class by its ``prefix:Local`` code.
FAULTS_BY_CODE: dict[str, type[SecurityFault]] = {
    f"{cls.prefix}:{cls.local}": cls
    for cls in (
        InvalidSecurity,
        InvalidSecurityToken,
        UnsupportedSecurityToken,
        UnsupportedAlgorithm,
        FailedAuthentication,
        FailedCheck,
        SecurityTokenUnavailable,
        MessageExpired,
        InvalidRequest,
        RequestFailed,
        ExpiredData,
        InvalidTimeRange,
        AuthenticationBadElements,
        BadContextToken,
        UnknownDerivationSource,
        UnsupportedContextToken,
        RenewNeeded,
    )
}
