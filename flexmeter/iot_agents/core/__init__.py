"""iot_agents/core"""
