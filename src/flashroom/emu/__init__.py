"""flashroom.emu"""
