"""consent-relay: reaching agents behind NAT without trusting the relay with any authority."""
