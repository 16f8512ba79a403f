"""iot_agents"""
