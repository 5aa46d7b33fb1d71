"""What the notebooks use: plots, widgets, notebook helpers and runner, the demo."""
