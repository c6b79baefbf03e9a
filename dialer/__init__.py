"""pbx-outreach: the outbound-calling and order-notification daemon (see README.md)."""

__version__ = "0.1.0"
