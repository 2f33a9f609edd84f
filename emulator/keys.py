"""The emulator's own CA, its server certificate and its token-signing keys, created once in the state dir."""
import base64
import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def _key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return key


def _cert(subject_key, issuer_key, subject: str, issuer: str, *, ca: bool, sans=()) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False)
    return builder.sign(issuer_key, hashes.SHA256())


class Keys:
    """CA (ca.pem), server certificate (server.pem + server-key.pem), and RSA signing keys by kid."""

    def __init__(self, state_dir: Path):
        state_dir.mkdir(parents=True, exist_ok=True)
        self.ca_path = state_dir / "ca.pem"
        self.cert_path = state_dir / "server.pem"
        self.cert_key_path = state_dir / "server-key.pem"
        ca_key = _key(state_dir / "ca-key.pem")
        if not self.ca_path.exists():
            ca = _cert(ca_key, ca_key, "Keyless emulator CA", "Keyless emulator CA", ca=True)
            self.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        server_key = _key(self.cert_key_path)
        if not self.cert_path.exists():
            sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1"))]
            cert = _cert(server_key, ca_key, "127.0.0.1", "Keyless emulator CA", ca=False, sans=sans)
            self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        # Entra's signing key, and one of every external OIDC issuer's (same kind of key, another kid).
        self.signing = {"entra-1": _key(state_dir / "signing-entra.pem"),
                        "oidc-1": _key(state_dir / "signing-oidc.pem")}

    def jwk(self, kid: str) -> dict:
        numbers = self.signing[kid].public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": b64(numbers.n), "e": b64(numbers.e),
                "alg": "RS256"}
