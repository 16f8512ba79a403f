"""End-to-end benchmark (`flexmeter bench e2e`) and the GE evaluation report (`flexmeter evaluate`)."""
