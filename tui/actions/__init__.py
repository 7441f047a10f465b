"""The dashboard's actions, one module per pane: what a key does, presented by the panes."""
