"""Small HTTP clients for the FIWARE APIs flexmeter talks: NGSI-v2, the IoT Agent north API, QuantumLeap."""

from flexmeter.ngsi.client import NgsiClient
from flexmeter.ngsi.errors import NgsiClientError, NgsiConnectionError, NgsiError, NgsiResponseError
from flexmeter.ngsi.headers import FiwareHeaders

__all__ = [
    "FiwareHeaders",
    "NgsiClient",
    "NgsiClientError",
    "NgsiConnectionError",
    "NgsiError",
    "NgsiResponseError",
]
