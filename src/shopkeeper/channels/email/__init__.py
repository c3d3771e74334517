"""Email: MIME building, DKIM signing, the SMTP provider; inbound mail and bounce handling."""
