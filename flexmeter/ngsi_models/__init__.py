"""ngsi_models"""
