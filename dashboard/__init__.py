"""The Streamlit dashboard: thin pages that call `analysis` and draw."""
