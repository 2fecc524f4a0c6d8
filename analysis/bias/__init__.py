"""Filter-induced caption bias: term and group shifts with intervals, and the DALL·E 2 reweighting fix."""
