"""flashroom.layout"""
