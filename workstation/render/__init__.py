"""workstation.render"""
