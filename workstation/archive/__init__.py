"""workstation.archive: the local archive (SQLite index + managed file store) and its importers.

- :mod:`~workstation.archive.archive` -- ``Archive(root)``: add, find, delete, usage, reconcile
- :mod:`~workstation.archive.index` -- schema, migrations, row maintenance
- :mod:`~workstation.archive.query` -- C-FIND matching to SQL
- :mod:`~workstation.archive.store` -- paths from UIDs, temp writes, durability order
- :mod:`~workstation.archive.reconcile` -- store/index agreement after a crash
- :mod:`~workstation.archive.importer` -- folders, files, zips, media; progress; cancel
- :mod:`~workstation.archive.media` -- DICOMDIR reading with path-escape refusal
- :mod:`~workstation.archive.results` -- the frozen ``AddResult`` shared with the listener
"""
