"""flexmeter: the cloud side of the FLEXMETER smart-metering network, on FIWARE NGSI-v2."""

__version__ = "0.1.0"
