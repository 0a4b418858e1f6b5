"""workstation.hanging"""
