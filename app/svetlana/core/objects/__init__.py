"""Objects of a label mask: the object table, patches, measurements, visiting order."""
