"""workstation.codecs"""
