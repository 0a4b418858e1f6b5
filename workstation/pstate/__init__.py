"""workstation.pstate"""
