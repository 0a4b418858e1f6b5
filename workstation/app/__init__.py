"""workstation.app"""
