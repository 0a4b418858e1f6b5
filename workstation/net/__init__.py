"""workstation.net"""
