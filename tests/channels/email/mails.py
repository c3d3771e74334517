"""Real-world shaped inbound mail for the tests: replies as mail programs write them, delivery
status notifications (RFC 3464) as Gmail, Exchange Online and Postfix write them, and abuse
feedback reports (RFC 5965) as Yahoo's and AOL's feedback loops send them.

Each builder takes the message we really sent (the bytes the SMTP sink received) where the
report returns it, so the tests exercise the same ids and headers a live system would see.
"""

# ruff: noqa: E501 - mail as real servers write it, long lines included

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

DATE = "Sun, 01 Mar 2026 12:05:00 +0000"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def headers_of(raw: bytes) -> str:
    """The header block of a message (for text/rfc822-headers)."""
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return text.split("\n\n", 1)[0] + "\n"


def message_id_of(raw: bytes) -> str:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return str(parsed["Message-ID"])


def gmail_reply(
    *,
    original_id: str,
    sender: str = "ann@example.com",
    name: str = "Ann Example",
    to: str = "support@acme.test",
    subject: str = "Re: Welcome, Ann",
    body: str = "Thanks! Where is my order #1042?",
    message_id: str = "<CAJ+q8Uv7Ew1TfM2Jx0rRmN-a4pS=Qx9gLzq1@mail.gmail.com>",
    references: str | None = None,
) -> bytes:
    """A reply from Gmail's web client: multipart/alternative, quoted original below."""
    refs = references if references is not None else original_id
    return _crlf(f"""MIME-Version: 1.0
Date: {DATE}
References: {refs}
In-Reply-To: {original_id}
Message-ID: {message_id}
Subject: {subject}
From: {name} <{sender}>
To: Acme <{to}>
Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f60718"

--000000000000a1b2c3d4e5f60718
Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

{body}

On Sun, Mar 1, 2026 at 12:00=E2=80=AFPM Acme <shop@acme.test> wrote:

> Hi Ann, see https://acme.test/shop
>

--000000000000a1b2c3d4e5f60718
Content-Type: text/html; charset="UTF-8"
Content-Transfer-Encoding: quoted-printable

<div dir=3D"ltr">{body}</div><br><div class=3D"gmail_quote"><div dir=3D"ltr"=
 class=3D"gmail_attr">On Sun, Mar 1, 2026 at 12:00=E2=80=AFPM Acme &lt;shop@=
acme.test&gt; wrote:<br></div><blockquote class=3D"gmail_quote">Hi Ann</block=
quote></div>

--000000000000a1b2c3d4e5f60718--
""")


def outlook_html_reply(*, original_id: str, sender: str = "ann@example.com") -> bytes:
    """Outlook on the web: HTML only, Thread-Index, the quote under a rule."""
    return _crlf(f"""From: Ann Example <{sender}>
To: Acme <support@acme.test>
Subject: RE: Welcome, Ann
Thread-Topic: Welcome, Ann
Thread-Index: AQHYh3xk8g2FZ1b2Sk2m3Q==
Date: {DATE}
Message-ID: <AM0PR07MB4178A1B2C3D4E5F6@AM0PR07MB4178.eurprd07.prod.outlook.com>
References: {original_id}
In-Reply-To: {original_id}
Content-Language: en-GB
Content-Type: text/html; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable
MIME-Version: 1.0

<html><head><style>p {{margin:0}}</style></head><body>
<div>Could you deliver on Saturday? Merci =E0 vous.</div>
<hr><div id=3D"divRplyFwdMsg"><b>From:</b> Acme &lt;shop@acme.test&gt;<br>=
<b>Sent:</b> Sunday, March 1, 2026 12:00</div><div>Hi Ann</div>
</body></html>
""")


def out_of_office(*, original_id: str, sender: str = "ann@example.com") -> bytes:
    return _crlf(f"""From: Ann Example <{sender}>
To: support@acme.test
Subject: Automatic reply: Welcome, Ann
Date: {DATE}
Message-ID: <ooo-7741@example.com>
In-Reply-To: {original_id}
References: {original_id}
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Content-Type: text/plain; charset="us-ascii"
MIME-Version: 1.0

I am out of the office until 9 March with no access to email.
""")


def gmail_dsn(original: bytes, *, recipient: str) -> bytes:
    """Google's "Address not found" bounce: multipart/related human part, the per-recipient
    block with a folded multi-line Diagnostic-Code, and the whole original message returned."""
    original_text = original.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return _crlf(f"""Return-Path: <>
Received: from mail-sor-f69.google.com (mail-sor-f69.google.com [209.85.220.69])
        by mx.acme.test with ESMTPS id 3f1e2d4c5b6a
        for <bounces@acme.test>; Sun, 01 Mar 2026 04:05:01 -0800 (PST)
X-Failed-Recipients: {recipient}
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces@acme.test
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
Message-ID: <65e1c4ad.5d0a0220.1f4b2.0c3aGMR@mx.google.com>
Date: Sun, 01 Mar 2026 04:05:01 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000e3d8f2061290a1b2"; report-type=delivery-status

--000000000000e3d8f2061290a1b2
Content-Type: multipart/related; boundary="000000000000e3e3f2061290a1c4"

--000000000000e3e3f2061290a1c4
Content-Type: multipart/alternative; boundary="000000000000e3e3f3061290a1c5"

--000000000000e3e3f3061290a1c5
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to {recipient} because the address couldn't be found, or is unable to receive mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

The response was:

The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces.

--000000000000e3e3f3061290a1c5
Content-Type: text/html; charset="UTF-8"

<html><body><h1>Address not found</h1><p>Your message wasn't delivered to <a style='color:#212121'><b>{recipient}</b></a> because the address couldn't be found.</p></body></html>

--000000000000e3e3f3061290a1c5--

--000000000000e3e3f2061290a1c4--

--000000000000e3d8f2061290a1b2
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; mx.acme.test
Arrival-Date: Sun, 01 Mar 2026 04:05:00 -0800 (PST)

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (142.250.27.26, the server for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a7si2183564wrx.341 - gsmtp
Last-Attempt-Date: Sun, 01 Mar 2026 04:05:01 -0800 (PST)

--000000000000e3d8f2061290a1b2
Content-Type: message/rfc822

{original_text}
--000000000000e3d8f2061290a1b2--
""")


def outlook_dsn(original: bytes, *, recipient: str) -> bytes:
    """An Exchange Online non-delivery report: five-digit status 5.1.10, `dns;` without a
    space, and only the original's headers returned (text/rfc822-headers)."""
    return _crlf(f"""From: Microsoft Outlook
	<MAILER-DAEMON@EUR05-AM6-obe.outbound.protection.outlook.com>
To: <bounces@acme.test>
Date: Sun, 1 Mar 2026 12:05:02 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="7b8f1d9c-2e4a-4c6b-9d1e-0a3b5c7d9e1f"
MIME-Version: 1.0
Message-ID: <0c8a2c3b-1f4e-4d7a-9b2c-5e6f7a8b9c0d@AM6PR05MB4935.eurprd05.prod.outlook.com>
In-Reply-To: {message_id_of(original)}
References: {message_id_of(original)}
Subject: Undeliverable: Welcome, friend
Auto-Submitted: auto-replied
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
X-MS-Exchange-Organization-SCL: -1

--7b8f1d9c-2e4a-4c6b-9d1e-0a3b5c7d9e1f
Content-Type: multipart/alternative; differences=Content-Type;
	boundary="3c1d5e7f-9a0b-4c2d-8e1f-2a3b4c5d6e7f"

--3c1d5e7f-9a0b-4c2d-8e1f-2a3b4c5d6e7f
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to {recipient} couldn't be delivered.
{recipient.split("@")[0]} wasn't found at {recipient.split("@")[1]}.

Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipien=
t not found by SMTP address lookup'

--3c1d5e7f-9a0b-4c2d-8e1f-2a3b4c5d6e7f
Content-Type: text/html; charset="us-ascii"

<html><body><p>Your message to {recipient} couldn't be delivered.</p></body></html>

--3c1d5e7f-9a0b-4c2d-8e1f-2a3b4c5d6e7f--

--7b8f1d9c-2e4a-4c6b-9d1e-0a3b5c7d9e1f
Content-Type: message/delivery-status

Reporting-MTA: dns;AM6PR05MB4935.eurprd05.prod.outlook.com
Received-From-MTA: dns;mx.acme.test
Arrival-Date: Sun, 1 Mar 2026 12:05:01 +0000

Final-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient {recipient} not found by SMTP address lookup
X-Display-Name: {recipient}


--7b8f1d9c-2e4a-4c6b-9d1e-0a3b5c7d9e1f
Content-Type: text/rfc822-headers

{headers_of(original)}
--7b8f1d9c-2e4a-4c6b-9d1e-0a3b5c7d9e1f--
""")


def postfix_dsn(original: bytes, *, recipient: str, action: str = "delayed", status: str = "4.4.1") -> bytes:
    """Postfix's "Delayed Mail" / "Undelivered Mail Returned to Sender" as in RFC 3464's
    examples: Original-Recipient, Will-Retry-Until for a delay, headers returned."""
    delayed = action == "delayed"
    subject = "Delayed Mail (still being retried)" if delayed else "Undelivered Mail Returned to Sender"
    retry = "Will-Retry-Until: Sun, 6 Mar 2026 12:05:01 +0000 (UTC)\n" if delayed else ""
    return _crlf(f"""Return-Path: <>
From: MAILER-DAEMON@relay.acme.test (Mail Delivery System)
Subject: {subject}
To: bounces@acme.test
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4Q9xYz1Lk2z3m4n5.1772366701/relay.acme.test"
Message-Id: <{"20260301120501.4Q9xYz1Lk2z3m4n5" if delayed else "20260306120502.4QDk8L0rTzz1b2c3"}@relay.acme.test>
Date: {"Sun,  1 Mar 2026 12:05:01" if delayed else "Fri,  6 Mar 2026 12:05:02"} +0000 (UTC)

This is a MIME-encapsulated message.

--4Q9xYz1Lk2z3m4n5.1772366701/relay.acme.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host relay.acme.test.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

--4Q9xYz1Lk2z3m4n5.1772366701/relay.acme.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.acme.test
X-Postfix-Queue-ID: 4Q9xYz1Lk2z3m4n5
X-Postfix-Sender: rfc822; bounces@acme.test
Arrival-Date: Sun,  1 Mar 2026 12:00:01 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Diagnostic-Code: X-Postfix; connect to mx.example.net[198.51.100.7]:25: Connection timed out
{retry}
--4Q9xYz1Lk2z3m4n5.1772366701/relay.acme.test
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{headers_of(original)}
--4Q9xYz1Lk2z3m4n5.1772366701/relay.acme.test--
""")


def yahoo_arf(original: bytes, *, recipient: str) -> bytes:
    """Yahoo's complaint feedback loop: the whole original message returned."""
    original_text = original.decode("utf-8", errors="replace").replace("\r\n", "\n")
    return _crlf(f"""Return-Path: <>
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@acme.test
Subject: Yahoo! Mail AntiSpam Feedback
Date: Sun, 01 Mar 2026 12:10:00 +0000
Message-ID: <1772367000.2471.arf@arf.mail.yahoo.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="_----------=_1772367000247126"

This is a multi-part message in MIME format.

--_----------=_1772367000247126
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 203.0.113.25 on Sun, 01 Mar 2026 12:00:03 +0000.
For more information about this format please see http://www.mipassoc.org/arf/.

--_----------=_1772367000247126
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 0.1
Original-Mail-From: <bounces@acme.test>
Original-Rcpt-To: <{recipient}>
Received-Date: Sun, 01 Mar 2026 12:00:03 +0000
Reported-Domain: acme.test
Authentication-Results: mta4012.mail.bf1.yahoo.com  from=acme.test; domainkeys=neutral (no sig);  from=acme.test; dkim=pass (ok)

--_----------=_1772367000247126
Content-Type: message/rfc822
Content-Disposition: inline

{original_text}
--_----------=_1772367000247126--
""")


def aol_arf(original: bytes) -> bytes:
    """AOL's feedback loop: the recipient is redacted everywhere, so only the returned
    message's Message-ID can name the send."""
    text = original.decode("utf-8", errors="replace").replace("\r\n", "\n")
    head, body = text.split("\n\n", 1)
    head = "\n".join("To: redacted@aol.com" if line.lower().startswith("to:") else line for line in head.split("\n"))
    return _crlf(f"""Return-Path: <>
From: scomp@aol.net
To: fbl@acme.test
Subject: Email Feedback Report for IP 203.0.113.25
Date: Sun, 01 Mar 2026 12:11:00 +0000
Message-ID: <201603011211.u21CB0aB012345@omr-m02.mx.aol.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
	boundary="boundary-1138-1772367060-omr-m02"

--boundary-1138-1772367060-omr-m02
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message with the message-id of {message_id_of(original)} received from IP address 203.0.113.25 on Sun, 01 Mar 2026 12:00:03 +0000

--boundary-1138-1772367060-omr-m02
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: AOL SComp
Version: 0.1
Received-Date: Sun, 01 Mar 2026 12:00:03 +0000
Source-IP: 203.0.113.25
Reported-Domain: acme.test
Redacted-Address: redacted@

--boundary-1138-1772367060-omr-m02
Content-Type: message/rfc822
Content-Disposition: inline

{head}

{body}
--boundary-1138-1772367060-omr-m02--
""")
