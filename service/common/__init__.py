"""The vocabulary every layer shares: webhook formats, time formatting, secrets, telemetry shape,
the private-destination policy.

Nothing here imports another ``service`` package, so models, schemas, core, delivery and api
may all import it (imports run downward only; see ``docs/architecture.md``).
"""
