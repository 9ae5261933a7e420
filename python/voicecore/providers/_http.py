"""What every aiohttp-based adapter shares: one client session each, and error mapping.

aiohttp's exceptions become :class:`~voicecore.errors.ProviderError` subclasses here, in one
place, so each adapter's pump stays a pump.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp

from voicecore.errors import ProviderConnectionError, ProviderError, ProviderStatusError, ProviderTimeoutError

__all__ = ["ClientSessionOwner", "provider_errors"]


class ClientSessionOwner:
    """Holds one :class:`aiohttp.ClientSession` for the life of a provider object.

    One session means one connection pool, so consecutive turns reuse a warm connection
    instead of paying a TCP and TLS handshake each. The session is made on first use, in the
    running event loop, and lives until :meth:`aclose`.
    """

    def __init__(self, *, keepalive: float = 60.0) -> None:
        """``keepalive``: seconds an idle pooled connection is kept open."""
        self._keepalive = keepalive
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The provider's client session, made on first use."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(keepalive_timeout=self._keepalive)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def aclose(self) -> None:
        """Close the session and its pooled connections; safe to call more than once."""
        if self._session is not None:
            await self._session.close()
            self._session = None


@contextmanager
def provider_errors(provider: str, *, request_id: str | None = None) -> Iterator[None]:
    """Turn aiohttp and timeout failures inside the block into :class:`ProviderError`."""
    try:
        yield
    except ProviderError:
        raise
    except aiohttp.WSServerHandshakeError as error:
        raise ProviderStatusError(
            f"the WebSocket handshake failed with HTTP {error.status}: {error.message}",
            provider=provider,
            status=error.status,
            request_id=request_id,
        ) from error
    except TimeoutError as error:
        raise ProviderTimeoutError(
            "no answer within the read timeout; the provider is stalled or overloaded",
            provider=provider,
            request_id=request_id,
        ) from error
    except aiohttp.ClientResponseError as error:
        raise ProviderStatusError(
            f"HTTP {error.status}: {error.message}",
            provider=provider,
            status=error.status,
            request_id=request_id,
        ) from error
    except (aiohttp.ClientError, ConnectionError) as error:
        raise ProviderConnectionError(
            f"connection failed or dropped ({type(error).__name__}: {error}); check the URL, or retry",
            provider=provider,
            request_id=request_id,
        ) from error
