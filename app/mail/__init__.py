"""Outgoing mail: messages from templates, an SMTP (or development log) transport, a queue.

Requests never wait on an SMTP server: they hand a message to the `Outbox`, whose workers send
it in the background with retries, backoff and a timeout.
"""
