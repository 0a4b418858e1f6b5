"""workstation.ui"""
