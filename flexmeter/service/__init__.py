"""The business-logic service: NGSI-v2 notifications in; energy balance and losses, consumption profiles,
outages, water, district heating, completeness, NIALM and the remote breaker out, as NGSI-v2 entities, a
REST API and a dashboard. See docs/service.md; the app factory is :func:`flexmeter.service.app.create_app`."""
