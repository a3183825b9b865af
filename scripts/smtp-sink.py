#!/usr/bin/python3
"""The SMTP sink the mail tests send to (started by scripts/smtp-sink.sh).

An aiosmtpd server on 127.0.0.1 that writes every message it accepts into a
directory: NAME.eml (the message as received) and NAME.json (the envelope:
sender, recipients, the user that authenticated). Writes files; listens on
loopback only.

AUTH PLAIN and LOGIN are offered over the plain connection and accept one
fixed test account (--user/--password), so a test can tell that the stored
password was really used; any other password answers 535. Recipients steer
refusals, so the failure paths can be tested:

  fail@...        550 (permanent: the message is never accepted)
  tempfail@...    451 (transient, every time)
  flaky-N@...     451 for the first N attempts at that address, then accepted
"""

import argparse
import asyncio
import json
import os
import re
import signal
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, maildir):
        self.maildir = maildir
        self.counter = 0
        self.flaky_seen = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "fail":
            return "550 5.1.1 <%s>: mailbox unavailable (the test sink refuses fail@)" % address
        if local == "tempfail":
            return "451 4.3.0 <%s>: try again later (the test sink defers tempfail@)" % address
        flaky = re.fullmatch(r"flaky-(\d+)", local)
        if flaky:
            seen = self.flaky_seen.get(address.lower(), 0)
            self.flaky_seen[address.lower()] = seen + 1
            if seen < int(flaky.group(1)):
                return "451 4.3.0 <%s>: try again later (attempt %d)" % (address, seen + 1)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.counter += 1
        name = "%d-%06d-%d" % (time.time_ns(), self.counter, os.getpid())
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "auth_login": (
                session.auth_data.login.decode("utf-8", "replace")
                if isinstance(session.auth_data, LoginPassword)
                else None
            ),
        }
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        for suffix, data in ((".eml", content), (".json", json.dumps(meta).encode())):
            tmp = os.path.join(self.maildir, "." + name + suffix + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(self.maildir, name + suffix))
        return "250 2.0.0 Message accepted for delivery"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    os.makedirs(args.maildir, exist_ok=True)
    controller = Controller(
        Sink(args.maildir),
        hostname="127.0.0.1",
        port=args.port,
        authenticator=authenticator(args.user, args.password),
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    print("smtp sink listening on 127.0.0.1:%d, messages in %s" % (args.port, args.maildir), flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
