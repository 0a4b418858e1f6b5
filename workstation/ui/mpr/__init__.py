"""The MPR workspace: reformatted views of a volume around a crosshair (PySide6 widgets)."""
