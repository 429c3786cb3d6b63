"""A webhook receiver that answers every POST after a fixed delay, many at once.

    python3 bench/slow_hook.py PORT DELAY_MS     # prints "delivered N" on SIGTERM/SIGINT
"""
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0
lock = threading.Lock()
delay = int(sys.argv[2]) / 1000.0


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(delay)
        with lock:
            count += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer.request_queue_size = 1024
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook)
server.daemon_threads = True


def stop(*_):
    print(f"delivered {count}", flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
server.serve_forever()
