"""quantumleap"""
