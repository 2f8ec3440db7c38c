"""OAuth 2 client-credentials tokens for SASL/OAUTHBEARER (KEDA's ``sasl: oauthbearer``).

kafka-python asks the provider for a token at each login (from a pool thread); the token is
fetched from ``oauthTokenEndpointUri`` with ``username``/``password`` as the client id and
secret, and reused until shortly before it expires. A failed request names no secret.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import urllib.request

import kafka.errors as kerr
from kafka.net.sasl.oauth import AbstractTokenProvider

from scaler.backends.kafka.trigger import KafkaConnection


class ClientCredentials(AbstractTokenProvider):  # type: ignore[misc]
    """Tokens for one connection identity, fetched when missing or about to expire.

    :param connection: the token endpoint, client id and secret, scopes and extensions
    :param timeout: seconds the token request may take
    """

    def __init__(self, connection: KafkaConnection, timeout: float) -> None:
        self._connection = connection
        self._timeout = timeout
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() > self._expires:
                self._token, lifetime = self._fetch()
                self._expires = time.monotonic() + max(lifetime - 30.0, lifetime / 2)
            return self._token

    def extensions(self) -> dict[str, str]:
        return dict(self._connection.oauth_extensions)

    def _fetch(self) -> tuple[str, float]:
        c = self._connection
        assert c.oauth_token_endpoint is not None
        form = {"grant_type": "client_credentials"}
        if c.oauth_scopes:
            form["scope"] = " ".join(c.oauth_scopes)
        basic = base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
        request = urllib.request.Request(  # noqa: S310 - the URI is the user's token endpoint
            c.oauth_token_endpoint,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except (OSError, ValueError) as err:
            raise kerr.SaslAuthenticationFailedError(
                f"OAuth token request failed: {type(err).__name__}"
            ) from None
        return str(body["access_token"]), float(body.get("expires_in", 300))
