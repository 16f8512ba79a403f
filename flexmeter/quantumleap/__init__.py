"""Embedded QuantumLeap-compatible time series: NGSI-v2 notifications in, QuantumLeap 1.0.0 queries out.

``api.create_app(store)`` is the WSGI app; ``store`` is a :class:`~flexmeter.quantumleap.store.base.Store`
(SQLite by default, PostgreSQL in QuantumLeap's own table layout). See docs/timeseries.md.
"""

QL_VERSION = "1.0.0"
"""The QuantumLeap release whose API this service follows (answered by ``/version``)."""
