"""valuelab.control"""
