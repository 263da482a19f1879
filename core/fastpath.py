"""One command on a pooled redis-py connection, without the client's per-command layers.

``redis.Redis.execute_command`` wraps every command in a retry closure, a failure
callback, OpenTelemetry-style duration and error recording and a command-specific
dispatch check; measured on a 2-core VM that is about half of a web request's Redis
client CPU (a pooled HGETALL: 62 µs through ``execute_command``, 27-45 µs through this).
The stores configure no redis-py retries (they retry reads themselves, see
:mod:`core.connection`), so what remains is exactly this: take a connection from the
pool, send, read, apply the client's response callback, give the connection back, and
drop it if anything but an error reply interrupted the exchange.

Used for single commands and script calls of a plain ``redis.Redis`` on a connection
pool (also under Sentinel); cluster clients, single-connection clients and fakeredis go
through ``execute_command`` as before. redis-py's observability hooks do not see these
commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

Call = Callable[..., Any]


def pooled_call(client: Any) -> Call | None:
    """A function sending one command through ``client``'s pool, or ``None`` where this
    does not apply (then use ``client.execute_command``)."""
    if type(client) is not redis.Redis or getattr(client, "connection", None) is not None:
        return None
    pool = client.connection_pool
    callbacks = client.response_callbacks
    response_error = redis.exceptions.ResponseError

    def call(*args: Any) -> Any:
        conn = pool.get_connection()
        try:
            conn.send_command(*args)
            reply = conn.read_response()
        except response_error:
            pool.release(conn)  # an error reply was read whole: the connection is clean
            raise
        except BaseException:
            conn.disconnect()  # timeout, broken socket, interrupt: its state is unknown
            pool.release(conn)
            raise
        if conn.should_reconnect():  # the server announced maintenance (redis-py's rule)
            conn.disconnect()
        pool.release(conn)
        callback = callbacks.get(args[0])
        return callback(reply) if callback is not None else reply

    return call
