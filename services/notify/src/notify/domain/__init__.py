"""Notify's domain: the alert policy, the wording of alerts, the delivery rules."""
