"""The desktop application (PySide6 + pyqtgraph): views and commands over svetlana.core."""
