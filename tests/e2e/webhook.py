#!/usr/bin/env python3
"""A webhook receiver for Alertmanager, for tests/e2e/alerting.sh.

usage: webhook.py serve ADDRESS PORT FILE
         append every POSTed notification to FILE as one JSON line (with the time it
         arrived as "received_at"), answer 200
       webhook.py find FILE ALERTNAME STATUS
         print the first alert named ALERTNAME with status STATUS (firing, resolved) from
         the notifications in FILE as JSON, with the notification's time; exit 1 if none
       webhook.py names FILE
         print every alertname/status seen, one per line
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def serve(address, port, path):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            note = json.loads(body)
            note["received_at"] = time.time()
            with open(path, "a") as f:
                f.write(json.dumps(note) + "\n")
            self.send_response(200)
            self.end_headers()

        def do_GET(self):  # readiness probe
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    HTTPServer((address, int(port)), Handler).serve_forever()


def notifications(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def find(path, name, status):
    for note in notifications(path):
        for alert in note["alerts"]:
            if alert["labels"].get("alertname") == name and alert["status"] == status:
                alert["received_at"] = note["received_at"]
                print(json.dumps(alert))
                return 0
    return 1


def names(path):
    for note in notifications(path):
        for alert in note["alerts"]:
            print(f'{alert["labels"].get("alertname")} {alert["status"]}')
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "serve":
        serve(*sys.argv[2:5])
    elif cmd == "find":
        sys.exit(find(*sys.argv[2:5]))
    elif cmd == "names":
        sys.exit(names(sys.argv[2]))
    else:
        sys.exit(__doc__)
