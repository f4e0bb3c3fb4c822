"""How the HTTP servers (the four services and the console) treat their connections."""

from __future__ import annotations

# An idle keep-alive connection must outlive the client pools that reuse it (httpx's 5 s,
# the ingress's 60 s): with equal timeouts the server closes a connection at the moment a
# client sends on it, and that request fails with "server disconnected".
KEEP_ALIVE_S = 75
