"""flashroom.ota"""
