"""A local HTTP server that stands in for Fyno's user profile API.

It is what `make demo`, the end-to-end, crash and benchmark tests run against over real HTTP
on 127.0.0.1, and where users try a plan before touching their workspace. It implements the
endpoints of `reference/fyno-api.md` with their documented status codes and bodies, keeps
profiles per workspace and version, and injects faults on demand: latency, 429 with
`Retry-After`, 5xx, a request-rate limit, answers lost after the write was done, connections
reset before the request is read, each UNKNOWN behaviour of the API as a switch, a gateway
answering instead of the API, and a hostile server's malformed answers (see `Faults`).
`/_sandbox/data`, `/_sandbox/log` and `/_sandbox/faults` let tests read and set its state
without a key, and meet no fault.

    settings  `Faults` and `SandboxConfig`: every switch, validated
    app       the order of checks for one request, and the admin routes
    store     profiles and the API's operations on them
    channels  reading channel data as Fyno's API accepts it
    hostile   answers that are not Fyno's: a gateway's, a hostile server's
    replies   a request and an answer, and the stock non-JSON pages
    faults    the seeded draws behind every rate, and the rate limit
    handler   HTTP: read, answer, drop, reset or trickle
    server    running it: in a thread for tests, in the foreground for the CLI
    log       the record of API requests

Built on the standard library's `http.server.ThreadingHTTPServer` on purpose: it adds no
dependency to the package (`phone_format=international` formats numbers with phonenumbers,
which the package depends on already), and a thread per connection suits a server whose
main job under load is to sleep (injected latency) while others are served. HTTP/1.1
keep-alive and a Content-Length on every answer let clients reuse connections as they would
with Fyno.

It imports nothing from the rest of `reconciler`: an independent reading of the API is what
makes end-to-end tests of the reconciler mean something.
"""

from __future__ import annotations

from .server import Sandbox, serve_forever
from .settings import Faults, SandboxConfig

__all__ = ["Faults", "Sandbox", "SandboxConfig", "serve_forever"]
