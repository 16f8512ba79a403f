"""The Flask app factory of the business service."""

from __future__ import annotations

from flask import Flask

from flexmeter.service.api import api, register_errors
from flexmeter.service.breaker import Breaker
from flexmeter.service.config import ServiceConfig
from flexmeter.service.engine import Engine
from flexmeter.service.queries import Queries


def create_app(config: ServiceConfig, engine: Engine | None = None) -> Flask:
    """The WSGI app; ``engine`` (started by the caller) holds the state, background work and writer."""
    engine = engine or Engine(config)
    app = Flask("flexmeter.service", static_folder=None)
    app.config["ENGINE"] = engine
    app.config["QUERIES"] = Queries(engine.store, config)
    app.config["BREAKER"] = Breaker(engine.store, config.ngsi_url, config.token)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(api)
    register_errors(app)
    return app
