"""Sending one message through a provider. Knows nothing of the daemon (`dialer`)."""
