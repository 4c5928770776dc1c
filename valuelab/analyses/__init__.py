"""valuelab.analyses"""
