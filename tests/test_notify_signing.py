"""Our Standard Webhooks signing against the spec's published test vectors and the reference library."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from worker.notify.channels import new_signing_secret
from worker.notify.signing import sign, signature_headers

# Verbatim from the reference libraries' tests (standard-webhooks/standard-webhooks): the Python (and Go,
# JavaScript, Ruby, C#, PHP) test_sign vector, and the Rust one.
VECTORS = [
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
     b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553,
     b'{"email":"test@example.com","username":"test_user"}', "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="),
]


@pytest.mark.parametrize(("secret", "msg_id", "timestamp", "body", "expected"), VECTORS)
def test_the_spec_test_vectors(secret: str, msg_id: str, timestamp: int, body: bytes, expected: str) -> None:
    assert sign(secret, msg_id, timestamp, body) == expected
    assert Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode()) == expected


def test_the_reference_verifier_accepts_what_we_sign_and_nothing_else() -> None:
    secret = new_signing_secret()
    body = b'{"type": "job.dead", "data": {"events": [{"id": 1, "subject": "caf\\u00e9"}]}}'
    headers = signature_headers(secret, "shopsync-notification-7", body)
    assert Webhook(secret).verify(body, headers)["type"] == "job.dead"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(body, headers)              # another channel's secret
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)                     # one byte more
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "shopsync-notification-8"})
