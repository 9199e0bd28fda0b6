"""What sender authentication costs per command mail (issue 10).

    python bench/sender_auth.py [--mails N]

A 2048-bit RSA key is made locally (dkimpy's dknewkey, openssl) and a 1 KB command mail is
signed with it. SenderAuth("dkim") then verifies N copies against a stub TXT lookup that
answers at once (the cache keeps the key: one lookup for all N), then N forged copies (the
same mail, From changed, no signature), then N copies under "mta:ID". Prints mails/s and
microseconds per mail for each, and how many TXT lookups were made.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dkim
import dkim.dknewkey

from listserv.sender_auth import SenderAuth

MAIL = (
    b"From: Ann Example <ann@example.com>\r\nTo: networking-request@lists.example.org\r\n"
    b"Subject: digest\r\nMessage-ID: <1@example.com>\r\n\r\n" + b"digest\r\n" + b"x" * 900 + b"\r\n"
)


def timed(label: str, auth: SenderAuth, raw: bytes, n: int) -> None:
    start = time.perf_counter()
    oks = sum(auth.authenticated(raw, "ann@example.com").ok for _ in range(n))
    took = time.perf_counter() - start
    print(f"{label:<28} {n / took:>9.0f} mails/s {took / n * 1e6:>9.0f} us/mail  ok={oks}/{n}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=2000)
    n = parser.parse_args().mails
    folder = Path(tempfile.mkdtemp())
    dkim.dknewkey.GenRSAKeys(str(folder / "k"), verbose=False)
    dkim.dknewkey.ExtractRSADnsPublicKey(str(folder / "k"), str(folder / "k.dns"), False)
    record = (folder / "k.dns").read_bytes()
    lookups: list[str] = []

    def txt(name: str) -> list[bytes] | None:
        lookups.append(name)
        return [record] if name == "s1._domainkey.example.com" else None

    signed = dkim.sign(MAIL, b"s1", b"example.com", (folder / "k").read_bytes()) + MAIL
    timed("dkim, signed (pass)", SenderAuth("dkim", dns_txt=txt), signed, n)
    timed("dkim, forged (no signature)", SenderAuth("dkim", dns_txt=txt), MAIL, n)
    ar = b"Authentication-Results: mx.test; dkim=pass header.d=example.com\r\n" + MAIL
    timed("mta:mx.test (pass)", SenderAuth("mta:mx.test", dns_txt=txt), ar, n)
    print(f"TXT lookups made: {len(lookups)}")


if __name__ == "__main__":
    main()
