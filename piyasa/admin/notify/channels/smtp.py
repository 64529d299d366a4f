"""Email through SMTP (aiosmtplib): one message, text and HTML, to a list of recipients.

Options (all strings): ``host`` (required), ``port`` (default 465 with ``tls``, 587 with
``starttls``, else 25), ``from`` and ``to`` (required; ``to`` is comma separated),
``username`` / ``password`` (login after the upgrade to TLS), ``starttls`` (default true:
upgrade a plain connection, refusing a server that does not offer it), ``tls`` (default
false: TLS from the first byte, port 465), ``ca_file`` (a PEM bundle to trust, for a private
CA), ``verify`` (default true), ``timeout`` (seconds, default 15).

The subject is ``[SEVERITY] title``; headers ``X-Piyasa-Severity``, ``X-Piyasa-Source`` and
``X-Piyasa-Fingerprint`` let a mail rule sort alerts. With ``body_html`` the message is
``multipart/alternative`` (text first, HTML second, RFC 2046 order of preference), else
plain text. The password is never logged or put in an error.
"""

from __future__ import annotations

import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING

from piyasa.admin.notify.channels.base import DeliveryError, Options, OutgoingMessage
from piyasa.admin.notify.channels.problems import ChannelConfigError, Problem
from piyasa.logs import REDACTOR

if TYPE_CHECKING:
    import aiosmtplib

OPTIONS = (
    "host",
    "port",
    "from",
    "to",
    "username",
    "password",
    "starttls",
    "tls",
    "ca_file",
    "verify",
    "timeout",
)


class _Refused(Exception):
    """A step of the SMTP conversation failed; ``problem`` says which, ``permanent`` whether
    sending again could help."""

    def __init__(self, problem: Problem, permanent: bool) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.permanent = permanent


def _address(options: Options, key: str, value: str) -> str:
    """``value`` when it parses as an address with an ``@``, else ChannelConfigError."""
    _, addr = parseaddr(value)
    if "@" not in addr or addr.startswith("@") or addr.endswith("@"):
        raise ChannelConfigError(Problem("bad_address", name=options.name, field=key, value=value))
    return value


def _why(exc: BaseException, timeout: float) -> str:
    """A short, secret-free reason for a connection failure ("connection refused")."""
    for err in (exc, exc.__cause__, exc.__context__):
        if isinstance(err, ConnectionRefusedError):
            return "connection refused"
        if isinstance(err, socket.gaierror):
            return "host not found"
        if isinstance(err, TimeoutError):
            return f"no answer within {timeout:g} s"
    return str(exc) or type(exc).__name__


class EmailChannel:
    """Sends notifications as email through one SMTP server."""

    kind = "email"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        tls: bool = False,
        ca_file: str | None = None,
        verify: bool = True,
        timeout: float = 15.0,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.username = username
        self._password = password
        if password:
            REDACTOR.add(password)
        self.starttls = starttls
        self.tls = tls
        self.ca_file = ca_file
        self.verify = verify
        self.timeout = timeout

    def __repr__(self) -> str:  # never the password
        return f"EmailChannel({self.name!r}, {self.host}:{self.port}, to={self.recipients})"

    @classmethod
    def from_config(cls, name: str, config: dict[str, str]) -> EmailChannel:
        """Raises ChannelConfigError for a missing host/from/to, a bad address, a bad port,
        or ``tls`` together with ``starttls=true``."""
        opts = Options(name, config, OPTIONS)
        host = opts.required("host")
        tls = opts.flag("tls", False)
        starttls = opts.flag("starttls", not tls)
        if tls and starttls:
            raise ChannelConfigError(Problem("tls_and_starttls", name=name))
        default_port = 465 if tls else 587 if starttls else 25
        port = int(opts.number("port", default_port, 1, 65535))
        sender = _address(opts, "from", opts.required("from"))
        recipients = [_address(opts, "to", a) for a in opts.words("to")]
        if not recipients:
            raise ChannelConfigError(Problem("missing", name=name, field="to"))
        return cls(
            name,
            host=host,
            port=port,
            sender=sender,
            recipients=recipients,
            username=opts.text("username"),
            password=opts.text("password"),
            starttls=starttls,
            tls=tls,
            ca_file=opts.text("ca_file"),
            verify=opts.flag("verify", True),
            timeout=opts.number("timeout", 15.0, 0.1, 300.0),
        )

    def compose(self, message: OutgoingMessage) -> EmailMessage:
        """The email for ``message``: text (plus HTML when given), severity in the subject
        and headers, the link and fields appended to the text."""
        mail = EmailMessage()
        mail["Subject"] = f"[{message.severity.upper()}] {message.title}"
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail["Date"] = formatdate(localtime=False, usegmt=True)
        mail["Message-ID"] = make_msgid(domain=parseaddr(self.sender)[1].split("@")[-1])
        mail["X-Piyasa-Severity"] = message.severity
        mail["X-Piyasa-Source"] = message.source
        mail["X-Piyasa-Fingerprint"] = message.fingerprint
        lines = [message.body_text]
        if message.fields:
            lines.append("")
            lines += [f"{key}: {value}" for key, value in message.fields.items()]
        if message.link:
            lines += ["", message.link]
        mail.set_content("\n".join(lines))
        if message.body_html is not None:
            mail.add_alternative(message.body_html, subtype="html")
        return mail

    def _client(self) -> aiosmtplib.SMTP:
        import aiosmtplib

        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            use_tls=self.tls,
            start_tls=False,  # done by hand below, to say exactly what is missing
            validate_certs=self.verify,
            cert_bundle=self.ca_file,
            timeout=self.timeout,
        )

    async def _open(self) -> aiosmtplib.SMTP:
        """A connected, upgraded and logged-in client; raises :class:`_Refused`."""
        import aiosmtplib

        where = {"host": self.host, "port": self.port}
        smtp = self._client()
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            if any(isinstance(e, ssl.SSLError) for e in (exc, exc.__cause__, exc.__context__)):
                raise _Refused(Problem("tls_failed", **where, error=_why(exc, 0)), True) from None
            problem = Problem("unreachable", **where, name=self.name, error=_why(exc, self.timeout))
            raise _Refused(problem, False) from None
        try:
            await smtp.ehlo()
            if self.starttls:
                if not smtp.supports_extension("starttls"):
                    raise _Refused(Problem("starttls_missing", **where), True)
                try:
                    await smtp.starttls()
                    await smtp.ehlo()  # RFC 3207: the extensions are asked again after TLS
                except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                    raise _Refused(
                        Problem("tls_failed", **where, error=_why(exc, 0)), True
                    ) from None
            if self.username:
                if not smtp.supports_extension("auth"):
                    raise _Refused(Problem("auth_unsupported", **where), True)
                try:
                    await smtp.login(self.username, self._password or "")
                except aiosmtplib.SMTPAuthenticationError as exc:
                    error = f"{exc.code} {exc.message}"
                    raise _Refused(
                        Problem("auth_failed", **where, username=self.username, error=error), True
                    ) from None
        except _Refused:
            smtp.close()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            problem = Problem("smtp_error", **where, code=exc.code, error=exc.message)
            raise _Refused(problem, exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            smtp.close()
            problem = Problem("unreachable", **where, name=self.name, error=_why(exc, self.timeout))
            raise _Refused(problem, False) from None
        return smtp

    async def check(self) -> list[str]:
        """Connects, upgrades to TLS and logs in as configured, then says goodbye: [] when
        all of that worked, else the one step that failed, with what to change."""
        try:
            smtp = await self._open()
        except _Refused as refused:
            return [refused.problem]
        await self._quit(smtp)
        return []

    async def send(self, message: OutgoingMessage) -> None:
        """Sends one email to every recipient; raises DeliveryError (``permanent`` for a
        refused login, recipient or message, or a server without the TLS asked for)."""
        import aiosmtplib

        try:
            smtp = await self._open()
        except _Refused as refused:
            raise DeliveryError(refused.problem, permanent=refused.permanent) from None
        where = {"host": self.host, "port": self.port}
        try:
            await smtp.send_message(self.compose(message))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            problem = Problem("smtp_refused", **where, code=first.code, error=first.message)
            raise DeliveryError(problem, permanent=first.code >= 500) from None
        except aiosmtplib.SMTPResponseException as exc:
            problem = Problem("smtp_refused", **where, code=exc.code, error=exc.message)
            raise DeliveryError(problem, permanent=exc.code >= 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            problem = Problem("unreachable", **where, name=self.name, error=_why(exc, self.timeout))
            raise DeliveryError(problem) from None
        finally:
            await self._quit(smtp)

    @staticmethod
    async def _quit(smtp: aiosmtplib.SMTP) -> None:
        import aiosmtplib

        try:
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            smtp.close()
