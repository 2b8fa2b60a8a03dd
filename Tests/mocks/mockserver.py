"""What every mock provider shares: bind 127.0.0.1 on a free port, print "PORT <n>" first, serve
until the test process closes our stdin (so a crashed test run leaves nothing behind)."""
import signal
import sys
import threading
from http.server import ThreadingHTTPServer


def serve(handler):
    # A parent that starts us from a thread with SIGTERM blocked (Foundation.Process on Linux)
    # must still be able to stop us.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()
