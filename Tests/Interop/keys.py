"""Client key pairs made in the test with `cryptography`, and their public JWKs (RFC 7517/7518)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from support import b64url


def _uint(value: int) -> str:
    """RFC 7518 §6.3.1: big-endian, minimal number of octets."""
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass
class ClientKey:
    private_key: object
    kid: str
    alg: str

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def public_jwk(self) -> dict:
        public = self.private_key.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x.to_bytes(32, "big")),
                   "y": b64url(numbers.y.to_bytes(32, "big"))}
        else:
            numbers = public.public_numbers()
            jwk = {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def write_jwks(self, path: Path) -> Path:
        path.write_text(json.dumps({"keys": [self.public_jwk]}))
        return path


def ec_p256_key(kid: str) -> ClientKey:
    return ClientKey(ec.generate_private_key(ec.SECP256R1()), kid, "ES256")


def rsa_key(kid: str, alg: str = "PS256") -> ClientKey:
    return ClientKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid, alg)
