"""workstation.archive"""
