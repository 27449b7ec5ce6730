"""Email backends for the tests: one whose server is down."""

from smtplib import SMTPServerDisconnected

from django.core.mail.backends.base import BaseEmailBackend

DOWN = "Connection unexpectedly closed"


class DownEmailBackend(BaseEmailBackend):
    """An SMTP server that drops every connection."""

    def send_messages(self, email_messages):
        raise SMTPServerDisconnected(DOWN)
