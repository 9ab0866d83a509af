"""A webhook receiver to try Herald with: it checks each request's signature and prints the event.

    WEBHOOK_SECRET=whsec_... uv run python docs/examples/receiver.py [PORT]

It listens on 127.0.0.1 (port 9000 unless given) and answers Herald's requests at ``/herald``
with 204, or 400 when the signature does not verify (Herald then retries). The README's
"Try it" runs it; its handler is the one "Receiving webhooks" shows.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from herald_client import WebhookVerificationError, verify_webhook

SECRET = os.environ["WEBHOOK_SECRET"]
app = FastAPI()


@app.post("/herald", status_code=204)
async def receive(request: Request) -> None:
    try:
        envelope = verify_webhook(SECRET, request.headers, await request.body())
    except WebhookVerificationError as exc:
        raise HTTPException(400, str(exc)) from None
    event = envelope["event"]  # the same uuid may arrive twice (a retry): deduplicate on it
    print("received", event["type"], event["uuid"], flush=True)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
