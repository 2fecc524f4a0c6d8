"""pretrain-audit's face: the command line. The engine is `analysis`, the app `dashboard`."""
