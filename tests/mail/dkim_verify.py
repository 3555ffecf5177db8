"""Verifies the DKIM signature of the message on standard input with dkimpy,
answering the key query from the Ed25519 seed given as the first argument
(base64, as `mail.dkim.private_key` holds it) instead of from DNS. Prints the
signed header list; exits 0 when the signature verifies, 1 when not."""

import base64
import sys

import dkim
import nacl.signing


def main():
    seed = base64.b64decode(sys.argv[1])
    public = nacl.signing.SigningKey(seed).verify_key.encode()
    record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)

    def dnsfunc(name, timeout=5):
        return record

    message = sys.stdin.buffer.read()
    verifier = dkim.DKIM(message)
    ok = verifier.verify(dnsfunc=dnsfunc)
    signed = verifier.signature_fields.get(b"h", b"")
    print(signed.decode().replace(" ", "").replace("\r\n", ""))
    sys.exit(0 if ok else 1)


main()
