"""pretrain-audit's engine: pure analysis functions over an audit workspace (no Streamlit here)."""

__version__ = "0.1.0"
