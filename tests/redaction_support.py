"""Known secret shapes for the redaction tests."""

from __future__ import annotations

# One of each secret shape; FOUND is what must never be stored.
SECRETS = (
    " AWS AKIAIOSFODNN7EXAMPLE, GitHub ghp_16C7e42F292c6912E7710c838347Ae178B4a, password=hunter22,"
    " Authorization: Bearer tok9Qx7Lm2PzR4, OpenAI sk-proj-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1, key"
    " -----BEGIN RSA PRIVATE KEY-----\nMIIEpQIBAAKCAQEAsecretkeybody\n-----END RSA PRIVATE KEY-----"
)
FOUND = (
    "AKIAIOSFODNN7EXAMPLE",
    "16C7e42F292c6912E7710c838347Ae178B4a",
    "hunter22",
    "tok9Qx7Lm2PzR4",
    "Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1",
    "MIIEpQIBAAKCAQEAsecretkeybody",
)
# For a free-text field the server bounds (agentplane.v1.max_bytes, 256 bytes):
# two of the shapes, short enough to be accepted.
SHORT_SECRETS = " password=hunter22 AKIAIOSFODNN7EXAMPLE"
# Under a key named like a secret: redacted whatever it looks like.
NAMED = {"api_token": "plainvalue77"}
