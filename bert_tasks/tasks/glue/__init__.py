"""GLUE adapter: the nine GLUE tasks (plus the AX diagnostic) read from the official layout, scored offline."""
