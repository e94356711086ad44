//! Shared support for the workspace tests (Python venv discovery, process helpers).
