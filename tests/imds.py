"""A small fake EC2 instance metadata service (IMDSv2) on 127.0.0.1, for instance-role credentials.

It answers the three requests botocore makes, in the order it makes them:
  PUT /latest/api/token                                   (x-aws-ec2-metadata-token-ttl-seconds) -> token
  GET /latest/meta-data/iam/security-credentials/         (x-aws-ec2-metadata-token) -> role name
  GET /latest/meta-data/iam/security-credentials/<role>   -> JSON credentials with an Expiration
Every credentials answer calls `issue()` for fresh keys (moto STS credentials in the tests) and
dates their Expiration by `clock`, the same fake clock the test gives the refreshing credentials.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "vodorigin-instance-role"
TOKEN = "imds-session-token"
LIFETIME = datetime.timedelta(hours=6)


class FakeClock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.offset


class FakeImds:
    def __init__(self, issue: Callable[[], dict[str, str]], clock: FakeClock) -> None:
        self.issue = issue
        self.clock = clock
        self.handed_out: list[str] = []  # access key ids, in order
        self.unauthorised = 0  # requests without the session token (IMDSv1 style)
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                ttl = self.headers.get("x-aws-ec2-metadata-token-ttl-seconds")
                if self.path == "/latest/api/token" and ttl:
                    self._answer(200, TOKEN)
                else:
                    self._answer(400, "")

            def do_GET(self) -> None:
                if self.headers.get("x-aws-ec2-metadata-token") != TOKEN:
                    imds.unauthorised += 1
                    self._answer(401, "")
                elif self.path == "/latest/meta-data/iam/security-credentials/":
                    self._answer(200, ROLE)
                elif self.path == f"/latest/meta-data/iam/security-credentials/{ROLE}":
                    self._answer(200, json.dumps(imds.credentials()))
                else:
                    self._answer(404, "")

            def _answer(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def credentials(self) -> dict[str, str]:
        keys = self.issue()
        self.handed_out.append(keys["AccessKeyId"])
        now = self.clock.now()
        return {"Code": "Success", "Type": "AWS-HMAC", "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "AccessKeyId": keys["AccessKeyId"], "SecretAccessKey": keys["SecretAccessKey"],
                "Token": keys["SessionToken"], "Expiration": (now + LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ")}

    def __enter__(self) -> FakeImds:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
