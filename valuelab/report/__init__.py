"""valuelab.report"""
