"""Order events and SMS (core): the intake, the dispatcher, templates, replies, providers.

Depends only on its ports (`dialer.messaging.ports`: events, outbox, opt-outs), the config
models, the shared modules and `notifiers` (sending a message); no I/O library of its own.
`dialer.store` implements the ports; `dialer.app` wires them.
"""
