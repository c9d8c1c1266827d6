"""schemathesis hooks for airlog's contract test (tests/it/contract.rs).

A station whose streamer is Liquidsoap makes airlog connect to its `endpoint`. Generated
stations would name arbitrary hosts, and this test must not send traffic anywhere but this
machine: a TCP endpoint is replaced with a Unix socket path that does not exist, so the
station stays valid and its monitor only fails to open a local file.
"""
import re

import schemathesis

LOCAL_ONLY = "/nonexistent/airlog-contract-test.sock"
REFUSED_URL = "http://127.0.0.1:9/airlog-contract-test"


@schemathesis.hook
def before_call(context, case, **kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    if "url" in body and "/webhooks" in case.path:
        body["url"] = REFUSED_URL
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str):
        return
    e = endpoint.strip()
    if e.startswith("/") or e.startswith("unix://"):
        return
    # What airlog would take for host:port (tcp:// optional); anything else is refused anyway.
    if re.search(r".:\s*\+?\d+$", e):
        body["endpoint"] = LOCAL_ONLY
