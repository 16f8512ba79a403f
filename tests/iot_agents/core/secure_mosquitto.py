"""A private Mosquitto with a password file and TLS listeners, certificates made here (``cryptography``).

Listeners (all on 127.0.0.1, free ports): ``plain`` (TCP, password required), ``tls`` (TLS, a server
certificate for 127.0.0.1 and localhost, password required), ``tls_other_name`` (TLS, a certificate of the
same CA for another host name only: the server-name check must refuse it), ``mutual`` (TLS that requires a
client certificate of the CA: ``client_cert``/``client_key``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import free_port

USER, PASSWORD = "meter-gw", "s3cret:p@ss/word"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_ca(directory: Path, name: str) -> tuple[Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / f"{name}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, cert, key


def make_server_cert(directory: Path, name: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
                     names: list[x509.GeneralName]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return cert_path, key_path


@dataclass
class SecureMosquitto:
    plain: int
    tls: int
    tls_other_name: int
    mutual: int
    client_cert: Path
    client_key: Path
    ca_file: Path
    wrong_ca_file: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, scheme: str, port: int, user: str | None = USER, password: str | None = PASSWORD) -> str:
        from urllib.parse import quote

        auth = ""
        if user is not None:
            auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "") + "@"
        return f"{scheme}://{auth}127.0.0.1:{port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start_secure_mosquitto(directory: Path) -> SecureMosquitto:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    ca_file, ca, ca_key = make_ca(directory, "test-ca")
    wrong_ca_file, _, _ = make_ca(directory, "wrong-ca")
    cert, key = make_server_cert(directory, "server", ca, ca_key, [
        x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    other_cert, other_key = make_server_cert(directory, "other", ca, ca_key, [x509.DNSName("mqtt.other.example")])
    client_cert, client_key = make_server_cert(directory, "client", ca, ca_key, [x509.DNSName("meter-gw")])
    passwords = directory / "passwd"
    subprocess.run([shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-b", "-c", str(passwords), USER,
                    PASSWORD], check=True, capture_output=True, timeout=10)
    passwords.chmod(0o600)
    plain, tls, other, mutual = free_port(), free_port(), free_port(), free_port()
    config = directory / "mosquitto.conf"
    lines = ["per_listener_settings false", "allow_anonymous false", f"password_file {passwords}",
             "persistence false", "log_dest stderr", "log_type error", "log_type warning", "log_type notice"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root")  # else Mosquitto switches to the 'mosquitto' user, who cannot read tmp files
    lines += [f"listener {plain} 127.0.0.1",
              f"listener {tls} 127.0.0.1", f"cafile {ca_file}", f"certfile {cert}", f"keyfile {key}",
              f"listener {other} 127.0.0.1", f"cafile {ca_file}", f"certfile {other_cert}", f"keyfile {other_key}",
              f"listener {mutual} 127.0.0.1", f"cafile {ca_file}", f"certfile {cert}", f"keyfile {key}",
              "require_certificate true"]
    config.write_text("\n".join(lines) + "\n")
    log_path = directory / "mosquitto.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    broker = SecureMosquitto(plain, tls, other, mutual, client_cert, client_key, ca_file, wrong_ca_file, process,
                             log_path)
    deadline = time.monotonic() + 10
    for port in (plain, tls, other, mutual):
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    broker.stop()
                    raise RuntimeError(f"mosquitto not listening on {port}: {log_path.read_text()}") from None
                time.sleep(0.02)
    return broker
