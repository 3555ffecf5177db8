"""Prints the token of the newest link in the mail written for an address.

Usage: token.py OUTBOX_DIR ADDRESS; exits 1 when no such mail exists yet.
"""

import email
import email.policy
import pathlib
import re
import sys

outbox, address = pathlib.Path(sys.argv[1]), sys.argv[2]
mails = sorted(outbox.glob("*"), key=lambda path: path.stat().st_mtime) if outbox.is_dir() else []
for path in reversed(mails):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    if address not in str(message.get("To", "")):
        continue
    body = message.get_body(preferencelist=("plain", "html"))
    found = re.search(r"token=([0-9a-fA-F]{64})", body.get_content() if body else "")
    if found:
        print(found.group(1))
        sys.exit(0)
sys.exit(1)
