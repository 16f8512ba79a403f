"""The FLEXMETER entity builders, one module per domain; each exposes its table(s) and builder(s)."""
