"""Writes COUNT DPoP proofs (RFC 9449 §4.2), one per line, for the token-exchange benchmark.

One P-256 key for all of them (the connector's key); each proof has its own jti, the given htu
and nonce (none when NONCE is "-"), htm POST and iat now. Built with `cryptography` and the standard library only, so the
load generator shares no code with the server. Usage: bench_dpop_proofs.py HTU NONCE COUNT OUT
"""

from __future__ import annotations

import base64
import json
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    htu, nonce, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}
    header = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}, separators=(",", ":")).encode())
    iat = int(time.time())
    with open(out, "w") as file:
        for _ in range(count):
            claims = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": htu, "iat": iat}
            if nonce != "-":
                claims["nonce"] = nonce
            signing_input = header + "." + b64(json.dumps(claims, separators=(",", ":")).encode())
            r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            file.write(signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")) + "\n")


if __name__ == "__main__":
    main()
