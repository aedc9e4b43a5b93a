"""flashroom.report"""
