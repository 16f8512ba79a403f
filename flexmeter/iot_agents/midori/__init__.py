"""iot_agents/midori"""
