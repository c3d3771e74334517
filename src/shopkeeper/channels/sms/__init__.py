"""SMS over an HTTP provider (Twilio-shaped REST API): the provider, its signed delivery-status
and inbound webhooks (with STOP/START/HELP keywords answered in TwiML)."""
