"""workstation.core"""
