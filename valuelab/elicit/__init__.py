"""valuelab.elicit"""
