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


#: Every concrete fault class by its ``prefix:Local`` code (filled as the classes below are
#: defined; the first class of a code is the one a reader of that code raises).
FAULTS_BY_CODE: dict[str, type[SecurityFault]] = {}
_CODE_CLASSES: set[type] = set()  # the classes defining a code (not the families)


class SecurityFault(WssimError):
    """A message was refused. ``prefix`` + ``local`` is the standard fault code; the prefix
    is ``wsse`` (WS-Security), ``wst`` (WS-Trust) or ``wsc`` (WS-SecureConversation).

    A subclass is a fault code: its local name is the class's name unless it sets ``local``
    (a finer kind of a code, such as :class:`MalformedMessage`), ``recoverable=True`` says
    that a client may recover by itself, and a private class (``_TrustFault``) is a family
    that only sets the prefix of the codes below it."""

    prefix: ClassVar[str] = "wsse"
    local: ClassVar[str] = "InvalidSecurity"
    #: Whether a client may recover by itself (new token / new context) and retry.
    recoverable: ClassVar[bool] = False

    def __init_subclass__(cls, *, recoverable: bool | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if recoverable is not None:
            cls.recoverable = recoverable
        if cls.__name__.startswith("_"):
            return  # a family
        if "local" not in cls.__dict__ and _CODE_CLASSES.isdisjoint(cls.__mro__[1:]):
            cls.local = cls.__name__
        _CODE_CLASSES.add(cls)
        FAULTS_BY_CODE.setdefault(f"{cls.prefix}:{cls.local}", cls)

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


# WS-Security 1.1 section 12 (wsse:)
class InvalidSecurity(SecurityFault): ...


class InvalidSecurityToken(SecurityFault): ...


class UnsupportedSecurityToken(SecurityFault): ...


class UnsupportedAlgorithm(SecurityFault): ...


class FailedAuthentication(SecurityFault): ...


class FailedCheck(SecurityFault): ...


class SecurityTokenUnavailable(SecurityFault): ...


class MessageExpired(SecurityFault): ...


class MalformedMessage(InvalidSecurity):
    """Not well-formed, or refused by the secure parser (DTD, entity, size, depth): a
    wsse:InvalidSecurity."""


# WS-Trust 1.3 section 11 (wst:)
class _TrustFault(SecurityFault):
    prefix = "wst"


class InvalidRequest(_TrustFault): ...


class RequestFailed(_TrustFault): ...


class ExpiredData(_TrustFault, recoverable=True): ...


class InvalidTimeRange(_TrustFault): ...


class AuthenticationBadElements(_TrustFault): ...


# WS-SecureConversation 1.3 section 9 (wsc:)
class _ConversationFault(SecurityFault):
    prefix = "wsc"


class BadContextToken(_ConversationFault, recoverable=True): ...


class UnknownDerivationSource(_ConversationFault, recoverable=True): ...


class UnsupportedContextToken(_ConversationFault): ...


class RenewNeeded(_ConversationFault, recoverable=True): ...
